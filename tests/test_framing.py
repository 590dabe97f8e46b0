"""The framing rules every front end shares, and the table's one look-up per request (``prepare``)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from msgsvc.config import Config
from msgsvc.dispatch.commands import CommandSet, Text
from msgsvc.dispatch.table import REFUSED, CommandTable, Plan
from msgsvc.dispatch.verbs import build_table
from msgsvc.protocol.framing import (
    ONE_COMMAND,
    FramingError,
    line_too_long,
    literal_mismatch,
    message_literal,
    split_message,
)
from msgsvc.protocol.wire import Ok, Request, parse_request
from tests.helpers import TcpHarness, UdpHarness, make_broker


class SplitMessageTests(SynchronousTestCase):
    """A whole message (datagram, WebSocket message): its line and what follows."""

    def test_line_endings(self) -> None:
        """One LF or CRLF ends the line; what follows is returned as it is."""
        for message in (b"PING", b"PING\n", b"PING\r\n"):
            request, rest = split_message(message, 100)
            self.assertEqual((request.verb, rest), ("PING", b""))
        self.assertEqual(split_message(b"SEND {2}\r\nab\n", 100)[1], b"ab\n")

    def test_blank(self) -> None:
        """A blank line is no request."""
        self.assertEqual(split_message(b"  \n", 100), (None, b""))

    def test_line_too_long(self) -> None:
        """A line over the limit is refused whole, with the same words TCP uses."""
        with self.assertRaises(FramingError) as raised:
            split_message(b"x" * 11 + b"\r\n", 10)
        self.assertEqual(raised.exception.reply, line_too_long(10))
        self.assertEqual(raised.exception.reply.text, "command lines are limited to 10 bytes")


class MessageLiteralTests(SynchronousTestCase):
    """The literal of a whole message."""

    def refusal(self, line: bytes, rest: bytes, limit: int = 100) -> FramingError:
        with self.assertRaises(FramingError) as raised:
            message_literal(parse_request(line), rest, limit)
        return raised.exception

    def test_literal(self) -> None:
        """The announced bytes, with one optional LF or CRLF after them; None without a marker."""
        self.assertEqual(message_literal(parse_request(b"SEND {3}"), b"abc\r\n", 100), b"abc")
        self.assertIsNone(message_literal(parse_request(b"PING"), b"", 100))

    def test_one_command(self) -> None:
        """More after a line without a literal is a second command: refused, tagged as the request."""
        refusal = self.refusal(b"#t PING", b"PING")
        self.assertEqual((refusal.reply, refusal.tag), (ONE_COMMAND, b"t"))

    def test_too_big(self) -> None:
        """A literal over the limit is refused before its bytes are looked at."""
        self.assertEqual(self.refusal(b"SEND {101}", b"").reply.text, "literal of 101 bytes exceeds the 100-byte limit")

    def test_mismatch(self) -> None:
        """A literal of another length than announced is refused."""
        self.assertEqual(self.refusal(b"SEND {5}", b"abc").reply, literal_mismatch(5, 3))


class PrepareTests(SynchronousTestCase):
    """One look-up per request: the plan holds what framing and dispatch need of the verb."""

    def setUp(self) -> None:
        self.table = build_table()
        self.config = Config(max_message=100, max_upload=1000)

    def test_known_verb(self) -> None:
        """A known verb's plan: its command, its literal limit, its sink; the same plan every time."""
        plan = self.table.prepare(parse_request(b"UPD t f {5}"))
        self.assertEqual((plan.command.verb, plan.refused), ("UPD", False))
        self.assertEqual(plan.literal_limit(self.config), 1000)
        self.assertIs(self.table.prepare(parse_request(b"upd x y {1}")), plan)

    def test_unknown_verb(self) -> None:
        """An unknown verb is refused, with --max-message as its literal limit and no sink."""
        plan = self.table.prepare(parse_request(b"FROB {5}"))
        self.assertIs(plan, REFUSED)
        self.assertEqual(plan.literal_limit(self.config), 100)
        self.assertIsNone(plan.literal_sink(make_broker(), None))

    def test_bad_tag(self) -> None:
        """Behind a bad tag a known verb is refused (no sink, no session) but keeps its literal limit."""
        plan = self.table.prepare(parse_request(b"#bad! NAME bob"))
        self.assertTrue(plan.refused)
        self.assertFalse(plan.remembers_client)
        self.assertTrue(self.table.prepare(parse_request(b"NAME bob")).remembers_client)
        upload = self.table.prepare(parse_request(b"#bad! UPD t f {5}"))
        self.assertEqual(upload.literal_limit(self.config), 1000)
        self.assertIsNone(upload.literal_sink(make_broker(), None))

    def test_dispatch_as_planned(self) -> None:
        """Dispatching with the plan is dispatching without it."""
        request = parse_request(b"PING")
        self.assertEqual(self.table.dispatch(make_broker(), None, request, self.table.prepare(request)), Ok("PONG"))


class _CountingTable(CommandTable):
    """A command table that counts how often front ends look a request up."""

    def __init__(self) -> None:
        commands = CommandSet()
        commands.verb("PUT", Text("data"), summary="s", remembers_client=True)(lambda broker, session, data: Ok())
        super().__init__([commands])
        self.prepared: list[str] = []

    def prepare(self, request: Request) -> Plan:
        self.prepared.append(request.verb)
        return super().prepare(request)

    def lookup(self, verb: str) -> None:
        raise AssertionError("front ends prepare requests instead")


class OneLookUpTests(SynchronousTestCase):
    """Both front ends ask the table about a request once."""

    def test_tcp(self) -> None:
        """A line with a literal is prepared once; a plain line runs its compiled command without being prepared."""
        table = _CountingTable()
        tcp = TcpHarness(make_broker(), table=table)
        tcp.send(b"PUT x\nPUT {3}\nabc\n#t PUT y\n")
        self.assertEqual(table.prepared, ["PUT", "PUT"])
        self.assertTrue(tcp.output().endswith(b"OK\r\nOK\r\n#t OK\r\n"))

    def test_udp(self) -> None:
        """A datagram with a literal, for a verb that opens a session, is prepared once."""
        table = _CountingTable()
        udp = UdpHarness(make_broker(), table)
        self.assertEqual(udp.command(b"PUT {3}\nabc").kind, "OK")
        self.assertEqual(table.prepared, ["PUT"])
