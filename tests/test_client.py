"""Tests for the client library's reply parser and request encoder."""

from twisted.trial.unittest import SynchronousTestCase

from msgsvc.client import Event, ProtocolViolation, Reply, ReplyParser, encode_command


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
