"""Tests for the client library's reply parser and request encoder."""

from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectionDone, TimeoutError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from msgsvc.client import (
    Event,
    ProtocolViolation,
    Reply,
    ReplyParser,
    TcpClient,
    UdpClient,
    connect_tcp,
    encode_command,
)
from tests.test_sockets import RealServer


class ReplyParserTests(SynchronousTestCase):
    """Reading replies and events from a byte stream."""

    def test_forms(self):
        """OK, ERR, DATA and events are told apart."""
        items = ReplyParser().feed(b"OK\r\nOK a b\r\nERR empty no more\r\nDATA 3 7\r\nx\ny\r\n* JOIN bob\r\n")
        self.assertEqual(
            items,
            [
                Reply("OK"),
                Reply("OK", "a b"),
                Reply("ERR", "no more", code="empty"),
                Reply("DATA", "7", payload=b"x\ny"),
                Event("JOIN", "bob"),
            ],
        )

    def test_split_anywhere(self):
        """A reply split at any byte is reassembled."""
        stream = b"#t DATA 5 1\r\nab\ncd\r\nOK PONG\r\n"
        parser = ReplyParser()
        items = [item for byte in stream for item in parser.feed(bytes([byte]))]
        self.assertEqual(items, [Reply("DATA", "1", payload=b"ab\ncd", tag="t"), Reply("OK", "PONG")])

    def test_violation(self):
        """Something that is not msgsvc output raises ProtocolViolation."""
        self.assertRaises(ProtocolViolation, ReplyParser().feed, b"HTTP/1.1 200 OK\r\n")
        self.assertRaises(ProtocolViolation, ReplyParser().feed, b"DATA lots\r\n")


class EncodeTests(SynchronousTestCase):
    """Writing commands."""

    def test_plain(self):
        """Words are joined by spaces and ended by CRLF."""
        self.assertEqual(encode_command("RECV", "@q", "5"), b"RECV @q 5\r\n")

    def test_payload_is_literal(self):
        """A payload always travels as a literal, so any bytes arrive exactly."""
        self.assertEqual(encode_command("SEND", payload=b"a\r\nb", tag="u1"), b"#u1 SEND {4}\r\na\r\nb\r\n")

    def test_line_breaks_in_words_refused(self):
        """Line breaks cannot be smuggled into a command line."""
        self.assertRaises(ValueError, encode_command, "SEND", "a\nPING")


class LiteralLookingTextTests(SynchronousTestCase):
    """Text that ends like a literal marker must not be taken for one."""

    def test_sent_as_literal(self):
        """A last argument ending in {N} travels as a literal, so the server reads text, not a marker."""
        self.assertEqual(encode_command("SAY", "see you at {2}"), b"SAY {14}\r\nsee you at {2}\r\n")
        self.assertEqual(encode_command("SAY", "{2} alone"), b"SAY {2} alone\r\n")


class TimeoutTests(SynchronousTestCase):
    """A client whose server goes silent gives up."""

    def test_overdue_reply_fails_and_drops_connection(self):
        """With a command timeout, a missing reply fails with TimeoutError and the connection is dropped."""
        clock = Clock()
        client = TcpClient(reactor=clock, timeout=5)
        transport = StringTransport()
        client.makeConnection(transport)
        client.dataReceived(b"OK msgsvc 0.1.0 ready\r\n")
        pending = client.command("PING")
        clock.advance(5)
        self.failureResultOf(pending, TimeoutError)
        self.assertTrue(transport.disconnecting)
        client.dataReceived(b"OK PONG\r\n")  # a late reply is ignored, not an error
        client.connectionLost(Failure(ConnectionDone()))


class _Datagrams:
    """A UDP transport that records what is sent."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def write(self, datagram: bytes, address: tuple) -> None:
        self.sent.append(datagram)

    def stopListening(self) -> None:
        pass


class UdpCancelTests(SynchronousTestCase):
    """A UDP command given up by its caller (a client leaving, a timeout)."""

    def test_cancel_stops_retries(self) -> None:
        """Cancelling a command stops its retries, and closing the client afterwards is quiet."""
        clock = Clock()
        client = UdpClient(clock, "127.0.0.1", 9, timeout=1.0, retries=3)
        transport = _Datagrams()
        client.makeConnection(transport)
        pending = client.command("QUIT")
        pending.cancel()
        self.failureResultOf(pending, CancelledError)
        self.assertEqual(clock.getDelayedCalls(), [])
        clock.advance(10)
        tag = client.tag_prefix.encode() + b"1"
        self.assertEqual(transport.sent, [b"&%s %%%s #%s QUIT\r\n" % (client.key, tag, tag)])
        self.successResultOf(client.close())
        client.datagramReceived(b"#%s OK bye\r\n" % tag, ("127.0.0.1", 9))  # a late reply is ignored


class UdpLargeReplyTests(RealServer):
    """Replies that fill most of a datagram."""

    async def test_reply_larger_than_twisted_default(self) -> None:
        """A 60,000-byte message arrives whole over UDP (Twisted reads 8192 bytes by default)."""
        message = bytes(range(256)) * 234 + b"end"
        tcp = await self.tcp()
        await tcp.command("SEND", payload=message)
        udp = await self.udp()
        reply = await udp.command("RECV")
        self.assertEqual(reply.payload, message)


class _Silent(Protocol):
    """Accepts a connection and never says a word; ``lost`` fires when the client hangs up."""

    def __init__(self) -> None:
        self.lost: Deferred[None] = Deferred()

    def connectionLost(self, reason: Failure = None) -> None:
        self.lost.callback(None)


class GreetingTimeoutTests(TestCase):
    """A server that accepts the connection but never greets."""

    async def test_no_greeting(self) -> None:
        """connect_tcp fails with TimeoutError naming the server, and drops the connection."""
        silent = _Silent()
        listener = reactor.listenTCP(0, Factory.forProtocol(lambda: silent), interface="127.0.0.1")
        self.addCleanup(listener.stopListening)
        port = listener.getHost().port
        error = await self.assertFailure(connect_tcp(reactor, "127.0.0.1", port, timeout=0.2), TimeoutError)
        self.assertEqual(
            str(error), f"User timeout caused connection failure: no greeting from 127.0.0.1:{port} within 0.2 seconds."
        )
        await silent.lost


class UdpRetryTests(SynchronousTestCase):
    """When a UDP command is sent again: a few round trips first, then backing off to the timeout."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.client = UdpClient(self.clock, "127.0.0.1", 9, timeout=1.0, retries=3)
        self.transport = _Datagrams()
        self.client.makeConnection(self.transport)

    def reply_to_last(self, text: bytes) -> None:
        """The server answers the latest command."""
        tag = self.transport.sent[-1].split(b" #")[1].split(b" ")[0]
        self.client.datagramReceived(b"#%s %s\r\n" % (tag, text), ("127.0.0.1", 9))

    def send_times(self, seconds: float) -> list[float]:
        """The times (from now, in seconds) at which datagrams went out within ``seconds``, timer by timer."""
        start, times, seen = self.clock.seconds(), [], len(self.transport.sent) - 1
        while True:
            if len(self.transport.sent) > seen:
                times.append(round(self.clock.seconds() - start, 3))
                seen = len(self.transport.sent)
            due = [call.getTime() for call in self.clock.getDelayedCalls()]
            if not due or min(due) - start > seconds:
                return times
            self.clock.advance(min(due) - self.clock.seconds())

    def test_unmeasured_waits_the_timeout(self) -> None:
        """Before any round trip is measured, a command is sent again every timeout, (retries + 1) times."""
        pending = self.client.command("PING")
        self.assertEqual(self.send_times(4.5), [0.0, 1.0, 2.0, 3.0])
        self.failureResultOf(pending, TimeoutError)

    def test_measured_round_trip_paces_retries(self) -> None:
        """After a 20 ms round trip, a lost command goes again after 80 ms, then 160, 320, 640, 1000 ms."""
        self.client.command("PING")
        self.clock.advance(0.02)
        self.reply_to_last(b"OK PONG")
        self.assertAlmostEqual(self.client.pacing.round_trip or 0, 0.02)
        pending = self.client.command("PING")
        self.assertEqual(self.send_times(2.3), [0.0, 0.08, 0.24, 0.56, 1.2, 2.2])
        self.assertNoResult(pending)
