"""The UDP front end over a recording transport: commands, refusals, replies too big for a datagram."""

from twisted.trial.unittest import SynchronousTestCase

from msgsvc.dispatch.commands import CommandSet
from msgsvc.dispatch.table import CommandTable
from msgsvc.dispatch.verbs import build_table, general
from msgsvc.protocol.wire import Data
from msgsvc.transports.udp import MAX_DATAGRAM
from tests.helpers import TcpHarness, UdpHarness, make_broker
from tests.test_commands import Recorder
from tests.udp_helpers import ALICE, BOB


class UdpCommandTests(SynchronousTestCase):
    """One command per datagram, one reply datagram."""

    def setUp(self):
        self.broker = make_broker()
        self.udp = UdpHarness(self.broker)

    def test_ping(self):
        """A datagram command gets exactly the bytes a TCP reply would have."""
        self.udp.send(b"PING\n")
        self.assertEqual(self.udp.datagrams(), [b"OK PONG\r\n"])

    def test_line_ending_optional(self):
        """No line ending, LF or CRLF: all work."""
        for datagram in (b"PING", b"PING\n", b"PING\r\n"):
            self.assertEqual(self.udp.command(datagram).text, "PONG")

    def test_send_recv(self):
        """SEND and RECV work over UDP without a session."""
        self.assertEqual(self.udp.command(b"SEND  two  spaces").text, "1 queued 12 bytes")
        self.assertEqual(self.udp.command(b"RECV", BOB).payload, b" two  spaces")
        self.assertEqual(self.broker.sessions, [])

    def test_literal(self):
        """A literal takes the bytes after its LF up to the end of the datagram."""
        payload = b"line1\nline2\r\n\x00"
        self.udp.send(b"SEND {%d}\n" % len(payload) + payload)
        self.udp.datagrams()
        self.assertEqual(self.udp.command(b"RECV").payload, payload)

    def test_literal_trailing_newline_tolerated(self):
        """One LF or CRLF after the literal bytes is accepted and dropped."""
        self.assertEqual(self.udp.command(b"SEND {3}\nabc\n").text, "1 queued 3 bytes")

    def test_literal_length_mismatch(self):
        """A literal that does not match the datagram is refused; nothing is stored."""
        for datagram in (b"SEND {5}\nabc", b"SEND {2}\nabcdef"):
            self.assertEqual(self.udp.command(datagram).code, "bad-args")
        self.assertEqual(self.broker.queues.depths(), [])

    def test_two_commands_refused(self):
        """A datagram holds one command."""
        reply = self.udp.command(b"#t SEND a\nSEND b\n")
        self.assertEqual((reply.code, reply.tag), ("bad-args", "t"))
        self.assertEqual(self.broker.queues.depths(), [])

    def test_line_too_long(self):
        """An over-long command line is refused (UDP has no connection to close)."""
        self.assertEqual(self.udp.command(b"SEND " + b"x" * 9000).code, "line-too-long")

    def test_oversized_literal(self):
        """A literal over --max-message is refused."""
        broker = make_broker(max_message=4)
        udp = UdpHarness(broker)
        self.assertEqual(udp.command(b"SEND {5}\n12345").code, "too-big")

    def test_empty_datagram_ignored(self):
        """An empty datagram gets no reply."""
        self.udp.send(b"")
        self.udp.send(b"\n")
        self.assertEqual(self.udp.datagrams(), [])

    def test_garbage(self):
        """Binary garbage gets ERR unknown-command."""
        self.assertEqual(self.udp.command(b"\xde\xad\xbe\xef").code, "unknown-command")

    def test_huge_literal_marker(self) -> None:
        """A marker of thousands of digits is too-big, said briefly, in one reply datagram."""
        self.udp.send(b"#h SEND {" + b"9" * 5000 + b"}\nabc", ALICE)
        self.assertEqual(
            self.udp.datagrams(ALICE),
            [b"#h ERR too-big literal of more than 10^20 bytes exceeds the 1048576-byte limit\r\n"],
        )

    def test_leading_spaces(self) -> None:
        """Spaces before the verb are ignored; a datagram of spaces is no command."""
        self.assertEqual(self.udp.command(b"  PING\n").text, "PONG")
        self.udp.send(b"   \n")
        self.assertEqual(self.udp.datagrams(), [])
        reply = self.udp.command(b"#t   ")
        self.assertEqual((reply.tag, reply.code, reply.text), ("t", "bad-args", "a command is missing after the tag"))

    def test_help_of_one_verb(self) -> None:
        """HELP <verb> works over UDP too."""
        self.assertTrue(self.udp.command(b"HELP recv").payload.startswith(b"RECV [@queue] [wait-seconds]\r\n"))

    def test_reply_too_big_for_datagram(self):
        """A message too large for one datagram is refused over UDP and stays queued for TCP."""
        big = b"x" * (MAX_DATAGRAM - 10)
        tcp = TcpHarness(self.broker)
        tcp.output()
        tcp.send(b"SEND {%d}\n" % len(big) + big + b"\n")
        tcp.output()
        self.assertEqual(self.udp.command(b"RECV").code, "too-big")
        self.assertEqual(tcp.command(b"RECV").payload, big)

    def test_largest_message_that_fits(self):
        """The largest payload the UDP client may take arrives in one datagram."""
        size = MAX_DATAGRAM - 64
        self.broker.queues.send("default", b"y" * size)
        self.udp.send(b"#abcdefghijklmnop RECV")
        (datagram,) = self.udp.datagrams()
        self.assertLessEqual(len(datagram), MAX_DATAGRAM)
        self.assertTrue(datagram.startswith(b"#abcdefghijklmnop DATA %d 1\r\n" % size))

    def test_cross_transport(self):
        """A message sent over UDP is received over TCP and vice versa."""
        tcp = TcpHarness(self.broker)
        tcp.output()
        self.udp.command(b"SEND from udp")
        self.assertEqual(tcp.command(b"RECV").payload, b"from udp")
        tcp.command(b"SEND from tcp")
        self.assertEqual(self.udp.command(b"RECV").payload, b"from tcp")

    def test_waiting_recv_over_udp(self):
        """RECV with a wait over UDP answers when a message arrives."""
        self.udp.send(b"RECV 5", ALICE)
        self.assertEqual(self.udp.datagrams(ALICE), [])
        self.udp.command(b"SEND hi", BOB)
        self.assertEqual(self.udp.received(ALICE)[0].payload, b"hi")


class RefusalTests(SynchronousTestCase):
    """Datagrams refused by the framing, or by the table as malformed, are reported to the refusal log."""

    def setUp(self) -> None:
        self.broker = make_broker(max_message=4)
        self.table = build_table()
        self.table.refusals = Recorder()
        self.udp = UdpHarness(self.broker, self.table)

    def test_framing_refusals(self) -> None:
        """Over-long lines, two commands, too-big and mismatched literals are logged with the sender."""
        datagrams = [b"SEND " + b"x" * 9000, b"PING\nPING", b"SEND {5}\n12345", b"SEND {3}\n1"]
        codes = [self.udp.command(datagram, ALICE).code for datagram in datagrams]
        self.assertEqual(codes, ["line-too-long", "bad-args", "too-big", "bad-args"])
        self.assertEqual(
            [(who, code) for who, code, _ in self.table.refusals.refusals], [("udp 127.0.0.1:50001", c) for c in codes]
        )

    def test_malformed_request(self) -> None:
        """An unknown verb is logged by the command table with the UDP sender."""
        self.udp.command(b"FROB", BOB)
        self.assertEqual(self.table.refusals.refusals[0][:2], ("udp 127.0.0.1:50002", "unknown-command"))

    def test_good_commands_not_logged(self) -> None:
        """Commands that are answered normally log nothing."""
        self.udp.command(b"PING")
        self.udp.command(b"RECV")
        self.assertEqual(self.table.refusals.refusals, [])


class UndeliveredTests(SynchronousTestCase):
    """A reply too large for one datagram gives back what its command took."""

    def setUp(self) -> None:
        self.given_back: list[str] = []
        commands = CommandSet()
        big = b"x" * MAX_DATAGRAM
        commands.verb("BIG", summary="s")(
            lambda broker, session: Data(big, "1", undelivered=lambda: self.given_back.append("big"))
        )
        commands.verb("FITS", summary="s")(
            lambda broker, session: Data(b"y", "2", undelivered=lambda: self.given_back.append("fits"))
        )
        self.udp = UdpHarness(make_broker(), CommandTable([general.commands, commands]))

    def test_too_big_gives_back(self) -> None:
        """The sender gets ERR too-big with the hint to use TCP; the reply's undelivered hook runs once."""
        self.udp.send(b"#b BIG", ALICE)
        (datagram,) = self.udp.datagrams(ALICE)
        size = len(b"#b DATA %d 1\r\n" % MAX_DATAGRAM) + MAX_DATAGRAM + 2
        self.assertEqual(
            datagram,
            b"#b ERR too-big a %d-byte reply does not fit one datagram; use TCP or a client that speaks transfers\r\n"
            % size,
        )
        self.assertEqual(self.given_back, ["big"])

    def test_delivered_keeps(self) -> None:
        """A reply that fits is sent, and nothing is given back."""
        self.assertEqual(self.udp.command(b"FITS", ALICE).payload, b"y")
        self.assertEqual(self.given_back, [])
