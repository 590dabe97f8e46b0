"""Tests for the client library's reply parser and request encoder."""

from twisted.internet.error import ConnectionDone, TimeoutError
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from msgsvc.client import Event, ProtocolViolation, Reply, ReplyParser, TcpClient, encode_command


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
