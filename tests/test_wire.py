"""Tests for msgsvc.protocol.wire: request lines, replies, events."""

from twisted.trial.unittest import SynchronousTestCase

from msgsvc.domain.events import Bye, Chat, Join, Leave, Packet, Tweet
from msgsvc.protocol.events import encode_event
from msgsvc.protocol.framing import literal_too_big
from msgsvc.protocol.wire import (
    LITERAL_SIZE_CEILING,
    Data,
    Err,
    Ok,
    host_port,
    listing,
    parse_request,
    printable,
)


class ParseRequestTests(SynchronousTestCase):
    """Splitting a command line into tag, verb, arguments and literal marker."""

    def test_verb_is_upper_cased(self):
        """Verbs are case-insensitive: they are upper-cased."""
        self.assertEqual(parse_request(b"send hi").verb, "SEND")

    def test_args_keep_spaces(self):
        """Everything after the single space following the verb is kept verbatim."""
        self.assertEqual(parse_request(b"ECHO  a ").args, b" a ")

    def test_blank_line_is_no_request(self):
        """A blank or all-space line is not a command."""
        self.assertIsNone(parse_request(b""))
        self.assertIsNone(parse_request(b"   "))

    def test_tag(self):
        """A leading #tag is split off."""
        request = parse_request(b"#abc123 PING")
        self.assertEqual((request.tag, request.verb, request.bad_tag), (b"abc123", "PING", False))

    def test_bad_tags(self):
        """Tags that are empty, too long or not alphanumeric are flagged."""
        for line in (b"# PING", b"#" + b"a" * 17 + b" PING", b"#a-b PING", b"#\xff PING"):
            self.assertTrue(parse_request(line).bad_tag, line)

    def test_literal_marker(self):
        """A last argument of exactly {N} announces a literal and is removed from the arguments."""
        request = parse_request(b"SEND @q {12}")
        self.assertEqual((request.literal_size, request.args), (12, b"@q"))

    def test_literal_marker_alone(self):
        """The marker may be the only argument."""
        request = parse_request(b"SEND {0}")
        self.assertEqual((request.literal_size, request.args), (0, b""))

    def test_braces_elsewhere_are_text(self):
        """Braces that are not exactly {N} at the end are ordinary text."""
        for line in (b"SEND {5}x", b"SEND {x}", b"SEND a{5}", b"SEND {-1}"):
            self.assertIsNone(parse_request(line).literal_size, line)

    def test_huge_literal_marker(self) -> None:
        """A marker of thousands of digits (over CPython's int() limit) is a size over every limit."""
        request = parse_request(b"SEND {" + b"9" * 5000 + b"}")
        self.assertGreater(request.literal_size, LITERAL_SIZE_CEILING)
        self.assertEqual(f"literal of {request.literal_size} bytes", "literal of more than 10^20 bytes")
        self.assertEqual(
            literal_too_big(request.literal_size, 5).encode(b"t"),
            b"#t ERR too-big literal of more than 10^20 bytes exceeds the 5-byte limit\r\n",
        )
        self.assertEqual(request.args, b"")

    def test_literal_size_boundary(self) -> None:
        """Up to 10^20 the size is exact; one more is 'more than 10^20'."""
        self.assertEqual(parse_request(b"SEND {%d}" % LITERAL_SIZE_CEILING).literal_size, LITERAL_SIZE_CEILING)
        self.assertEqual(str(parse_request(b"SEND {%d}" % (LITERAL_SIZE_CEILING + 1)).literal_size), "more than 10^20")

    def test_literal_leading_zeros(self) -> None:
        """Leading zeros do not change a size, however many there are."""
        self.assertEqual(parse_request(b"SEND {" + b"0" * 5000 + b"5}").literal_size, 5)
        self.assertEqual(parse_request(b"SEND {000}").literal_size, 0)

    def test_leading_spaces_ignored(self) -> None:
        """Spaces before the verb (and before a tag) are ignored; the text after the verb is not touched."""
        self.assertEqual(parse_request(b" PING").verb, "PING")
        request = parse_request(b"   ECHO  a ")
        self.assertEqual((request.verb, request.args), ("ECHO", b" a "))
        request = parse_request(b"  #t1   ping")
        self.assertEqual((request.tag, request.verb, request.bad_tag), (b"t1", "PING", False))

    def test_tag_without_command(self) -> None:
        """A tag followed by nothing (or only spaces) is a request without a verb."""
        for line in (b"#t", b"#t ", b"#t    "):
            request = parse_request(line)
            self.assertEqual((request.tag, request.verb), (b"t", ""), line)

    def test_binary_verb_matches_nothing(self):
        """Non-ASCII bytes in a verb become replacement characters, not an exception."""
        self.assertIn("\ufffd", parse_request(b"\xff\xfe ok").verb)


class ReplyTests(SynchronousTestCase):
    """The exact bytes of replies and events."""

    def test_ok(self):
        """OK with and without text, with and without a tag."""
        self.assertEqual(Ok().encode(), b"OK\r\n")
        self.assertEqual(Ok("PONG").encode(b"t1"), b"#t1 OK PONG\r\n")

    def test_err_text_is_one_line(self):
        """Line breaks in an error text cannot split the reply."""
        self.assertEqual(Err("bad-args", "a\r\nb").encode(), b"ERR bad-args a  b\r\n")

    def test_data(self):
        """DATA carries its size, label, payload and a closing CRLF."""
        self.assertEqual(Data(b"a\nb", "7").encode(b"x"), b"#x DATA 3 7\r\na\nb\r\n")
        self.assertEqual(Data(b"").encode(), b"DATA 0\r\n\r\n")

    def test_events(self):
        """Each event value is one line starting with '* ', as SPEC section 4 has them."""
        cases = {
            Chat("bob", " hi  there"): b"* CHAT bob  hi  there\r\n",
            Join("bob"): b"* JOIN bob\r\n",
            Leave("bob"): b"* LEAVE bob\r\n",
            Tweet(7, "~erin", "#a b"): b"* TWEET 7 ~erin #a b\r\n",
            Packet(1, 3, 1795269349500): b"* PKT 1 3 1795269349500\r\n",
            Bye("shutdown"): b"* BYE shutdown\r\n",
        }
        for value, line in cases.items():
            self.assertEqual(encode_event(value), line)
        self.assertEqual(encode_event(Bye("shutdown")), b"* BYE shutdown\r\n")  # not the previous one's bytes

    def test_listing(self):
        """Listings end every line with CRLF."""
        self.assertEqual(listing(["a 1", "b 2"]), b"a 1\r\nb 2\r\n")

    def test_host_port(self) -> None:
        """Addresses in log lines: IPv6 hosts in brackets."""
        self.assertEqual(host_port(("127.0.0.1", 5000)), "127.0.0.1:5000")
        self.assertEqual(host_port(("::1", 5000, 0, 0)), "[::1]:5000")

    def test_printable(self):
        """Untrusted bytes are escaped and clipped for error texts."""
        self.assertEqual(printable(b"a\x00\xff"), "a\\x00\\xff")
        self.assertEqual(printable(b"x" * 50, limit=4), "xxxx...")
