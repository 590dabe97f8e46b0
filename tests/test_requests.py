"""How both front ends answer odd request lines: huge literal markers, leading spaces, HELP."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import TcpHarness, UdpHarness, make_broker

HUGE = b"SEND {" + b"9" * 5000 + b"}"
"""A literal marker of 5,000 digits: more than CPython's int() converts (4,300)."""


class HugeLiteralTests(SynchronousTestCase):
    """A literal marker with thousands of digits is a too-big literal, not a crash."""

    def test_tcp(self) -> None:
        """TCP answers too-big (briefly) and closes, as for any literal over the limit."""
        client = TcpHarness(make_broker())
        client.output()
        client.send(b"#big " + HUGE + b"\n")
        self.assertEqual(
            client.output(), b"#big ERR too-big literal of more than 10^20 bytes exceeds the 1048576-byte limit\r\n"
        )
        self.assertTrue(client.transport.disconnecting)

    def test_tcp_leading_zeros(self) -> None:
        """Thousands of leading zeros do not make a small literal big."""
        client = TcpHarness(make_broker())
        client.output()
        client.send(b"ECHO {" + b"0" * 5000 + b"3}\nabc\n")
        self.assertEqual(client.output(), b"DATA 3 echo\r\nabc\r\n")

    def test_udp(self) -> None:
        """UDP answers too-big in one datagram; the server carries on."""
        udp = UdpHarness(make_broker())
        reply = udp.command(HUGE + b"\nx")
        self.assertEqual(
            (reply.code, reply.text), ("too-big", "literal of more than 10^20 bytes exceeds the 1048576-byte limit")
        )
        self.assertEqual(udp.command(b"PING").text, "PONG")


class LeadingSpaceTests(SynchronousTestCase):
    """Spaces before the verb are ignored, as a user typing in nc expects."""

    def setUp(self) -> None:
        self.client = TcpHarness(make_broker())
        self.client.output()

    def test_space_before_verb(self) -> None:
        """' PING' is PING; the text after the verb keeps its spaces."""
        self.client.send(b" PING\n   ECHO  a \n")
        self.assertEqual(self.client.output(), b"OK PONG\r\nDATA 3 echo\r\n a \r\n")

    def test_space_after_tag(self) -> None:
        """Extra spaces between the tag and the verb are ignored too."""
        self.assertEqual(self.client.command(b"#t1   PING").text, "PONG")

    def test_only_spaces(self) -> None:
        """A line of only spaces is not a command and gets no reply."""
        self.client.send(b"    \n \r\n")
        self.assertEqual(self.client.output(), b"")

    def test_tag_alone(self) -> None:
        """A tag followed by nothing (or spaces) still says the command is missing."""
        self.client.send(b"#t1\n#t2   \n")
        self.assertEqual(
            self.client.output(),
            b"#t1 ERR bad-args a command is missing after the tag\r\n"
            b"#t2 ERR bad-args a command is missing after the tag\r\n",
        )


class HelpOverTcpTests(SynchronousTestCase):
    """HELP with and without a verb, on the wire."""

    def test_help_send(self) -> None:
        """HELP SEND is a DATA listing, no longer 'too many arguments'."""
        client = TcpHarness(make_broker())
        client.output()
        client.send(b"help send\n")
        payload = (
            b"SEND [@queue] <message>\r\n"
            b"  queue a message (the text, or a literal)\r\n"
            b"  system: queue\r\n"
            b"  errors: too-big\r\n"
            b"  any command may get: bad-args, internal, line-too-long, too-big\r\n"
        )
        self.assertEqual(client.output(), b"DATA %d help\r\n" % len(payload) + payload + b"\r\n")

    def test_help_nosuch(self) -> None:
        """HELP of an unknown verb is ERR unknown-command."""
        client = TcpHarness(make_broker())
        client.output()
        reply = client.command(b"HELP NOSUCH")
        self.assertEqual(reply.code, "unknown-command")
