"""Tests for the WebSocket front end (/ws): framing, the same bytes as TCP, events, the cap, closing."""

from __future__ import annotations

import os

import twisted.test
from twisted.internet import reactor
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.iweb import IPolicyForHTTPS
from twisted.web.websocket import WebSocketClientEndpoint
from zope.interface import implementer

from msgsvc.client.replies import Event, Reply
from msgsvc.dispatch.pipeline import MAX_PENDING_REPLIES
from msgsvc.dispatch.verbs import build_table
from msgsvc.domain.events import Chat
from msgsvc.protocol.wire import CRLF
from msgsvc.transports.tcp import GREETING
from msgsvc.transports.traffic import Traffic
from msgsvc.transports.websocket import WebSocketClient
from msgsvc.transports.websocket_input import input_limit
from msgsvc.web.service import WebService
from msgsvc.web.site import HTTP_IDLE_TIMEOUT, build_site
from tests.helpers import TcpHarness, make_broker, temp_path
from tests.wshelpers import ClientFactory, RecordingClient, WebHarness, parsed

SEQUENCE = [
    b"PING",
    b"SEND hello world",
    b"SEND @jobs  two spaces first",
    b"SEND {12}\nline1\r\nline2\n",
    b"#a7 RECV",
    b"QUEUES",
    b"RECV @jobs",
    b"#b1 RECV",
    b"RECV",
    b"ECHO  a ",
    b"GEN 5",
    b"FOO bar",
    b"#bad!tag PING",
    b"NAME alice",
    b"SAY hi",
    b"TWEET hello #ws",
    b"LAST",
    b"QUIT",
]
"""Commands whose replies do not name the client's address or transport, each with its literal."""


class SameBytesAsTcpTests(SynchronousTestCase):
    """Each WebSocket message holds exactly what TCP sends for the same command."""

    def test_sequence(self) -> None:
        """A command sequence gets the same bytes over both, one reply per message; QUIT closes."""
        tcp = TcpHarness(make_broker())
        tcp_bytes = tcp.output()
        for command in SEQUENCE:
            tcp.send(command + b"\n")
        tcp_bytes += tcp.output()

        web = WebHarness()
        client = web.connect()
        web.flush()
        messages = client.take()
        for command in SEQUENCE:
            messages += web.exchange(client, command)
        self.assertEqual(messages[0], GREETING)
        self.assertEqual(len(messages), len(SEQUENCE) + 1)
        self.assertEqual(b"".join(messages), tcp_bytes)
        self.assertEqual(parsed(messages)[-1], Reply("OK", "bye"))
        self.assertIsNotNone(client.lost)

    def test_text_messages(self) -> None:
        """A text message is a command as well; replies are always binary messages."""
        web = WebHarness()
        client = web.connect()
        web.flush()
        client.take()
        assert client.transport is not None
        client.transport.sendTextMessage("ECHO héllo")
        web.flush()
        self.assertEqual(client.take(), ["DATA 6 echo\r\nhéllo\r\n".encode()])
        self.assertEqual(client.texts, [])


class FramingTests(SynchronousTestCase):
    """A message is one command and its literal, framed like a datagram."""

    def setUp(self) -> None:
        self.web = WebHarness(max_line=20)
        self.client = self.web.connect()
        self.web.flush()
        self.client.take()

    def answer(self, message: bytes) -> list[Reply | Event]:
        return parsed(self.web.exchange(self.client, message))

    def test_two_commands_refused(self) -> None:
        """Two command lines in one message are refused; the connection stays usable."""
        (reply,) = self.answer(b"PING\nPING")
        self.assertEqual((reply.kind, reply.code), ("ERR", "bad-args"))
        self.assertEqual(self.answer(b"PING"), [Reply("OK", "PONG")])

    def test_literal_size_must_match(self) -> None:
        """A literal of another length than announced is refused, with the request's tag."""
        (reply,) = self.answer(b"#t1 SEND {5}\nabc")
        self.assertEqual((reply.kind, reply.code, reply.tag), ("ERR", "bad-args", "t1"))

    def test_line_too_long(self) -> None:
        """A line over --max-line is refused whole and the WebSocket stays open (the message was whole)."""
        (reply,) = self.answer(b"ECHO " + b"x" * 30)
        self.assertEqual((reply.kind, reply.code), ("ERR", "line-too-long"))
        self.assertIsNone(self.client.lost)

    def test_blank_message(self) -> None:
        """A blank message is no command and gets no reply."""
        self.assertEqual(self.answer(b""), [])


class InputBoundTests(SynchronousTestCase):
    """Twisted gathers a message whole, so a client may not send more than its largest command without one."""

    def test_oversized_message_dropped(self) -> None:
        """Sending more than the largest command plus slack of an unfinished message closes the connection."""
        web = WebHarness(max_line=20, max_message=100, max_upload=100)
        client = web.connect()
        web.flush()
        # the start of one binary frame announcing 1 GiB (masked with a zero key), then more than the bound of it
        header = b"\x82\xff" + (1 << 30).to_bytes(8, "big") + b"\0\0\0\0"
        raw = client.transport.transport  # type: ignore[union-attr]  # Twisted's WebSocket transport's TCP one
        raw.write(header + b"x" * (input_limit(web.broker.config) + 1))
        web.flush()
        self.assertIsNotNone(client.lost)
        self.assertEqual(web.broker.sessions, [])

    def test_counted_per_message(self) -> None:
        """Many messages, each within the bound, may add up to more than it."""
        web = WebHarness(max_line=20, max_message=100, max_upload=100)
        client = web.connect()
        web.flush()
        message = b"SEND {100}\n" + b"y" * 100
        count = input_limit(web.broker.config) // len(message) + 10
        for _ in range(count):
            client.send(message)
        web.flush()
        self.assertIsNone(client.lost)
        self.assertEqual(web.broker.queues.totals.sent, count)


class ClientTests(SynchronousTestCase):
    """A WebSocket client is a client like any other."""

    def test_chat_with_tcp(self) -> None:
        """A WebSocket client and a TCP client chat: JOIN, CHAT both ways, LEAVE."""
        web = WebHarness(max_clients=0)
        ws = web.connect()
        web.flush()
        ws.take()
        self.assertEqual(parsed(web.exchange(ws, b"NAME alice")), [Reply("OK", "Your name is set as: alice")])
        tcp = TcpHarness(web.broker, table=web.table)
        tcp.output()
        self.assertEqual(tcp.command(b"NAME bob").kind, "OK")
        web.flush()
        self.assertEqual(ws.take(), [b"* JOIN bob\r\n"])
        tcp.command(b"SAY hi alice")
        web.flush()
        self.assertEqual(parsed(ws.take()), [Event("CHAT", "bob hi alice")])
        self.assertEqual(parsed(web.exchange(ws, b"SAY hello bob")), [Reply("OK", "hello bob ACK")])
        self.assertEqual(tcp.received(), [Event("CHAT", "alice hello bob")])
        self.assertEqual(parsed(web.exchange(ws, b"WHO"))[0].payload.count(b"~alice ws "), 1)
        tcp.disconnect()
        web.flush()
        self.assertEqual(ws.take(), [b"* LEAVE bob\r\n"])

    def test_counts_toward_max_clients(self) -> None:
        """With the cap taken by a TCP client, a WebSocket client gets ERR full and is closed."""
        web = WebHarness(max_clients=1)
        TcpHarness(web.broker, table=web.table)
        client = web.connect()
        web.flush()
        self.assertEqual(client.take(), [b"ERR full Server is full, try again later.\r\n"])
        self.assertIsNotNone(client.lost)
        self.assertEqual(web.broker.sessions[0].transport_name, "tcp")

    def test_session(self) -> None:
        """The client holds a ws session while connected, and frees it when it leaves."""
        web = WebHarness()
        client = web.connect()
        web.flush()
        (session,) = web.broker.sessions
        self.assertEqual(session.transport_name, "ws")
        assert client.transport is not None
        client.transport.loseConnection()
        web.flush()
        self.assertEqual(web.broker.sessions, [])

    def test_idle_timeout(self) -> None:
        """After --idle-timeout without a command the client hears BYE idle-timeout and is closed."""
        web = WebHarness(idle_timeout=10)
        client = web.connect()
        web.flush()
        client.take()
        web.reactor.advance(9)
        web.exchange(client, b"PING")
        web.reactor.advance(9)
        web.flush()
        self.assertEqual(client.take(), [])
        web.reactor.advance(1)
        web.flush()
        self.assertEqual(client.take(), [b"* BYE idle-timeout\r\n"])
        self.assertIsNotNone(client.lost)

    def test_http_timeout_not_applied(self) -> None:
        """The HTTP connection's idle timeout does not cut the WebSocket upgraded from it; --idle-timeout does."""
        web = WebHarness(idle_timeout=600)
        client = web.connect()
        web.flush()
        web.reactor.advance(HTTP_IDLE_TIMEOUT * 2)
        web.flush()
        self.assertIsNone(client.lost)
        self.assertEqual(web.site.timeOut, HTTP_IDLE_TIMEOUT)

    def test_server_stop(self) -> None:
        """Stopping the server says BYE shutdown to a WebSocket client and closes it."""
        web = WebHarness()
        client = web.connect()
        web.flush()
        client.take()
        stopped = web.broker.shutdown()
        web.flush()
        self.assertEqual(client.take(), [b"* BYE shutdown\r\n"])
        self.assertIsNotNone(client.lost)
        self.successResultOf(stopped)


class FakeWebSocket:
    """The twisted.web.websocket transport as a client sees it, recording."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.producer: object = None
        self.closed = False

    def sendBytesMessage(self, data: bytes) -> None:
        self.sent.append(data)

    def attachProducer(self, producer: object) -> None:
        self.producer = producer

    def detachProducer(self) -> None:
        self.producer = None

    def loseConnection(self, code: int = 1000) -> None:
        self.closed = True


class FakeRaw:
    """The connection under the WebSocket: whether it is read."""

    def __init__(self) -> None:
        self.reading = True
        self.aborted = False

    def pauseProducing(self) -> None:
        self.reading = False

    def resumeProducing(self) -> None:
        self.reading = True

    def abortConnection(self) -> None:
        self.aborted = True


class FlowControlTests(SynchronousTestCase):
    """Reading is held back as the pipeline says; messages that arrive meanwhile wait in order."""

    def setUp(self) -> None:
        self.broker = make_broker(max_clients=0)
        self.ws = FakeWebSocket()
        self.raw = FakeRaw()
        self.client = WebSocketClient(
            self.broker, build_table(), self.broker.clock, ("127.0.0.1", 1), self.raw, Traffic()
        )
        self.client.negotiationStarted(self.ws)  # type: ignore[arg-type]
        self.client.negotiationFinished()
        self.addCleanup(self.client.setTimeout, None)

    def test_held_messages_answered_in_order_on_resume(self) -> None:
        """While the socket's buffer is full nothing is read; then the waiting messages run in order."""
        self.assertIs(self.ws.producer, self.client)
        self.client.pauseProducing()  # the socket's buffer is full
        self.assertFalse(self.raw.reading)
        for n in range(3):
            self.client.bytesMessageReceived(b"ECHO %d" % n)
        self.assertEqual(self.ws.sent, [GREETING])
        self.client.resumeProducing()
        self.assertTrue(self.raw.reading)
        self.assertEqual(self.ws.sent[1:], [b"DATA 1 echo\r\n%d\r\n" % n for n in range(3)])

    def test_too_many_pending_replies_pause_reading(self) -> None:
        """Replies waiting for a commit past MAX_PENDING_REPLIES stop the reading until they go."""
        broker = make_broker(store="sqlite:" + temp_path(self), max_clients=0)
        self.addCleanup(broker.stores.close)
        client = WebSocketClient(broker, build_table(), broker.clock, ("127.0.0.1", 1), self.raw, Traffic())
        client.negotiationStarted(FakeWebSocket())  # type: ignore[arg-type]
        client.negotiationFinished()
        self.addCleanup(client.setTimeout, None)
        for _ in range(MAX_PENDING_REPLIES + 2):
            client.bytesMessageReceived(b"SEND x")
        self.assertFalse(self.raw.reading)
        broker.clock.advance(0)  # the grouped commit
        self.assertTrue(self.raw.reading)
        self.assertEqual(client.replies.pending, 0)

    def test_streamed_reply_is_one_message(self) -> None:
        """A streamed DATA body (GEN) is gathered into its one message; an event waits behind it."""
        self.client.bytesMessageReceived(b"GEN 600000")
        self.assertEqual(len(self.ws.sent), 2)
        self.assertEqual(len(self.ws.sent[1]), len(b"DATA 600000 gen\r\n") + 600000 + 2)
        self.client.send_event(Chat("bob", "hi"))
        self.assertEqual(self.ws.sent[2], b"* CHAT bob hi" + CRLF)

    def test_traffic_counted(self) -> None:
        """Bytes in and out are counted for the metrics."""
        self.client.bytesMessageReceived(b"PING")
        self.assertEqual((self.client.traffic.received, self.client.traffic.sent), (4, len(GREETING) + 9))


class RealSocketTests(TestCase):
    """The WebSocket over a real socket, with Twisted's own WebSocket client."""

    async def test_ping(self) -> None:
        """Twisted's client connects to /ws on a real port, is greeted and gets PONG."""
        broker = make_broker(reactor)
        web = WebService(reactor, "tcp:0:interface=127.0.0.1")
        web.site = build_site(broker, build_table(), reactor, None, None)
        web.startService()
        self.addCleanup(web.stopService)
        endpoint = WebSocketClientEndpoint.new(reactor, f"http://127.0.0.1:{web.bound_port}/ws")
        client: RecordingClient = await endpoint.connect(ClientFactory())
        self.assertEqual(await client.next(), GREETING)
        (session,) = broker.sessions
        self.assertEqual((session.transport_name, session.peer[0]), ("ws", "127.0.0.1"))
        client.send(b"#x PING")
        self.assertEqual(await client.next(), b"#x OK PONG\r\n")
        client.send(b"QUIT")
        self.assertEqual(await client.next(), b"OK bye\r\n")
        await client.gone
        await broker.shutdown()

    async def test_wss(self) -> None:
        """With an ssl: endpoint the same WebSocket runs over TLS (HTTPS and WSS)."""
        pem = os.path.join(os.path.dirname(twisted.test.__file__), "server.pem")  # a certificate for localhost
        broker = make_broker(reactor)
        web = WebService(reactor, f"ssl:0:interface=127.0.0.1:privateKey={pem}:certKey={pem}")
        web.site = build_site(broker, build_table(), reactor, None, None)
        web.startService()
        self.addCleanup(web.stopService)
        self.assertTrue(web.url.startswith("https://127.0.0.1:"))
        url = f"https://localhost:{web.bound_port}/ws"
        endpoint = WebSocketClientEndpoint.new(reactor, url, tlsPolicy=_TrustOne(Certificate.loadPEM(_read(pem))))
        client: RecordingClient = await endpoint.connect(ClientFactory())
        self.assertEqual(await client.next(), GREETING)
        client.send(b"ECHO over tls")
        self.assertEqual(await client.next(), b"DATA 8 echo\r\nover tls\r\n")
        client.send(b"QUIT")
        await client.gone
        await broker.shutdown()


@implementer(IPolicyForHTTPS)
class _TrustOne:
    """An HTTPS policy that trusts one certificate (the test server's own)."""

    def __init__(self, certificate: Certificate) -> None:
        self.certificate = certificate

    def creatorForNetloc(self, hostname: bytes, port: int) -> object:
        return optionsForClientTLS(hostname.decode(), trustRoot=self.certificate)


def _read(path: str) -> bytes:
    with open(path, "rb") as source:
        return source.read()
