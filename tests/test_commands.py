"""Tests for the command table: argument binding, errors, HELP."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import TestCase

from msgsvc.dispatch import help
from msgsvc.dispatch.commands import Arg, CommandSet, Text
from msgsvc.dispatch.table import CommandTable
from msgsvc.dispatch.verbs import build_table
from msgsvc.domain.errors import NoMessage
from msgsvc.protocol.wire import Data, Err, Ok, Request, parse_request
from tests.helpers import FakeClient, make_broker
from tests.test_errors import SPEC_CODES

SPEC_ERROR_CODES = frozenset(SPEC_CODES)
"""The error codes of the specification."""


def request(line: bytes, literal: bytes | None = None) -> Request:
    """The request a line parses to, carrying ``literal``."""
    parsed = parse_request(line)
    parsed.literal = literal
    return parsed


class BindingTests(TestCase):
    """How a request's arguments reach the handler."""

    def setUp(self) -> None:
        self.calls: list[tuple[Any, Any]] = []
        commands = CommandSet()
        record = self.calls.append

        @commands.verb("PUT", Arg("queue", optional=True, default="default", prefix="@"), Text("text"), summary="s")
        def put(broker: Any, session: Any, queue: str, text: bytes) -> Ok:
            record((queue, text))
            return Ok()

        @commands.verb("NUM", Arg("n", int), Arg("m", int, optional=True, default=7), summary="s")
        def num(broker: Any, session: Any, n: int, m: int) -> Ok:
            record((n, m))
            return Ok()

        @commands.verb("BOOM", summary="s")
        def boom(broker: Any, session: Any) -> Ok:
            raise ZeroDivisionError()

        @commands.verb("NOPE", summary="s")
        def nope(broker: Any, session: Any) -> Deferred[Ok]:
            return fail(NoMessage("none here"))

        self.table = CommandTable([commands])

    def dispatch(self, line: bytes, literal: bytes | None = None) -> Any:
        return self.table.dispatch(make_broker(), None, request(line, literal))

    def test_text_after_single_space(self) -> None:
        """Text starts after exactly one space and keeps inner, leading and trailing spaces."""
        self.dispatch(b"PUT  a  b ")
        self.dispatch(b"PUT @q  x")
        self.assertEqual(self.calls, [("default", b" a  b "), ("q", b" x")])

    def test_missing_text_is_empty(self) -> None:
        """A missing text argument is the empty text."""
        self.dispatch(b"PUT")
        self.dispatch(b"PUT @q")
        self.assertEqual(self.calls, [("default", b""), ("q", b"")])

    def test_literal_fills_last_argument(self) -> None:
        """A literal is the last argument, binary bytes included."""
        self.dispatch(b"PUT @q", literal=b"\r\n\x00")
        self.assertEqual(self.calls, [("q", b"\r\n\x00")])

    def test_literal_with_extra_words(self) -> None:
        """Words left over beside a literal are refused."""
        reply = self.dispatch(b"PUT hello", literal=b"x")
        self.assertEqual(reply.code, "bad-args")
        self.assertEqual(self.calls, [])

    def test_converted_and_optional(self) -> None:
        """Arguments are converted; optional ones take their default."""
        self.dispatch(b"NUM 3")
        self.dispatch(b"NUM  4  5")
        self.assertEqual(self.calls, [(3, 7), (4, 5)])

    def test_no_arguments_take_every_default(self) -> None:
        """A line with no arguments, for a verb whose arguments may all be left out, gets every default each time."""
        commands = CommandSet()

        @commands.verb("OPT", Arg("a", optional=True, default="x"), Arg("b", int, optional=True, default=2), summary="")
        def opt(broker: Any, session: Any, a: str, b: int) -> Ok:
            self.calls.append((a, b))
            return Ok()

        table = CommandTable([commands])
        for line in (b"OPT", b"OPT y 3", b"OPT"):
            table.dispatch(make_broker(), None, request(line, None))
        self.assertEqual(self.calls, [("x", 2), ("y", 3), ("x", 2)])

    def test_bad_args(self) -> None:
        """Missing, unconvertible, non-ASCII or extra arguments get ERR bad-args with the usage."""
        for line in (b"NUM", b"NUM x", b"NUM \xff", b"NUM 1 2 3"):
            reply = self.dispatch(line)
            self.assertEqual(reply.code, "bad-args", line)
            self.assertIn("usage: NUM <n> [m]", reply.text)
        self.assertEqual(self.calls, [])

    def test_unknown_command(self) -> None:
        """Unknown verbs get ERR unknown-command naming the verb safely."""
        reply = self.dispatch(b"FROB\x00 x")
        self.assertEqual(reply.code, "unknown-command")
        self.assertIn("FROB\\x00", reply.text)

    def test_bad_tag(self) -> None:
        """A malformed tag gets ERR bad-args."""
        self.assertEqual(self.dispatch(b"#bad! NUM 1").code, "bad-args")

    def test_handler_exception_is_internal(self) -> None:
        """A bug in a handler becomes ERR internal and is logged."""
        reply = self.dispatch(b"BOOM")
        self.assertEqual(reply.code, "internal")
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_refused_in_deferred(self) -> None:
        """A domain error failing a Deferred becomes its ERR reply."""
        reply = self.successResultOf(self.dispatch(b"NOPE"))
        self.assertEqual((reply.code, reply.text), ("no-msg", "none here"))

    def test_help_lists_every_verb(self) -> None:
        """HELP is generated from the table: every verb with its usage and summary, under its system."""
        reply = self.dispatch(b"HELP")
        self.assertIsInstance(reply, Data)
        lines = reply.payload.decode().splitlines()
        self.assertEqual([line.split()[0] for line in lines], ["==", "HELP", "==", "PUT", "NUM", "BOOM", "NOPE"])
        self.assertEqual((lines[0], lines[2]), ("== general", "== other"))
        self.assertIn("\r\nPUT [@queue] <text>", reply.payload.decode())

    def test_duplicate_verbs_refused(self) -> None:
        """Defining a verb twice is a programming error caught at start-up."""
        commands = CommandSet()
        commands.verb("PING", summary="a")(lambda broker, session: Ok())
        commands.verb("PING", summary="b")(lambda broker, session: Ok())
        self.assertRaises(ValueError, CommandTable, [commands])


class HandlerSignatureTests(TestCase):
    """The table refuses a handler whose parameters do not match the verb's declared arguments."""

    def test_mismatch_refused(self) -> None:
        """A misnamed, missing or extra parameter stops the verb from being declared."""
        for handler in (
            lambda broker, session, text: Ok(),
            lambda broker, session: Ok(),
            lambda broker, session, queue, message, extra: Ok(),
        ):
            commands = CommandSet()
            declare = commands.verb("SEND", Arg("queue"), Text("message"), summary="s")
            self.assertRaises(TypeError, declare, handler)

    def test_match_accepted(self) -> None:
        """Parameters named broker, session, then the declared arguments in order, are accepted."""
        commands = CommandSet()
        commands.verb("SEND", Arg("queue"), Text("message"), summary="s")(lambda broker, session, queue, message: Ok())
        self.assertEqual([c.verb for c in commands.commands], ["SEND"])


class Recorder:
    """Stands in for the table's RefusalLog: records what it is told."""

    def __init__(self) -> None:
        self.refusals: list[tuple[str, str, str]] = []

    def refused(self, who: str, code: str, text: str) -> None:
        self.refusals.append((who, code, text))


class RefusalLogTests(TestCase):
    """Requests the table refuses as malformed are reported to the table's refusal log."""

    def setUp(self) -> None:
        self.broker = make_broker()
        self.session = self.broker.open_session(FakeClient(peer=("127.0.0.1", 5000)))
        self.table = build_table()
        self.table.refusals = Recorder()

    def dispatch(self, line: bytes) -> Err:
        return self.table.dispatch(self.broker, self.session, parse_request(line))

    def test_malformed_requests_logged(self) -> None:
        """Unknown verbs, bad arguments, bad tags and missing verbs are logged with who sent them."""
        replies = [self.dispatch(line) for line in (b"FROB", b"PING x", b"#bad! PING", b"#t")]
        self.assertEqual(self.table.refusals.refusals, [("tcp 127.0.0.1:5000", r.code, r.text) for r in replies])
        self.assertEqual([r.code for r in replies], ["unknown-command", "bad-args", "bad-args", "bad-args"])

    def test_handler_refusals_not_logged_here(self) -> None:
        """A well-formed command that fails (RECV on an empty queue) is no malformed input."""
        self.assertEqual(self.dispatch(b"RECV").code, "empty")
        self.assertEqual(self.dispatch(b"PING").text, "PONG")
        self.assertEqual(self.table.refusals.refusals, [])

    def test_ipv6_peer(self) -> None:
        """An IPv6 peer is shown in brackets."""
        session = self.broker.open_session(FakeClient(transport_name="udp", peer=("::1", 7)))
        self.table.dispatch(self.broker, session, parse_request(b"NOSUCH"))
        self.assertEqual(self.table.refusals.refusals[0][0], "udp [::1]:7")


class HelpTests(TestCase):
    """HELP of the real table: verbs grouped by system; HELP <verb> in detail."""

    def setUp(self) -> None:
        self.table = build_table()

    def help(self, line: bytes) -> Data | Err:
        return self.table.dispatch(make_broker(), None, parse_request(line))

    def test_grouped_by_system(self) -> None:
        """Every system has a heading with a description, in this order, and each verb is listed once."""
        payload = self.help(b"HELP").payload.decode()
        headings = [line for line in payload.split("\r\n") if line.startswith("== ")]
        self.assertEqual(
            [heading.split(":")[0] for heading in headings],
            ["== general", "== queue", "== chat", "== forum", "== microblog", "== diagnostics"],
        )
        self.assertTrue(all(len(heading.split(": ", 1)[1]) > 10 for heading in headings))
        verbs = [line.split()[0] for line in payload.split("\r\n") if line and not line.startswith("== ")]
        self.assertEqual(sorted(verbs), sorted({c.verb for s in self.table.help.systems for c in s.commands}))
        self.assertEqual(len(verbs), len(set(verbs)))
        self.assertTrue(payload.endswith("\r\n"))

    def test_exact_overview_start(self) -> None:
        """The first lines of HELP, exactly."""
        lines = self.help(b"HELP").payload.decode().split("\r\n")
        self.assertEqual(
            lines[:5],
            [
                "== general: check the server, list commands, leave",
                "HELP [verb]                      list commands by system; HELP <verb>: its usage and errors",
                "PING                             check the server answers",
                "QUIT                             end the connection or UDP session (also EXIT, XIT)",
                "== queue: FIFO message queues; RESERVE and ACK for at-least-once delivery",
            ],
        )

    def test_one_verb(self) -> None:
        """HELP SEND gives its usage, summary, system and errors, as text lines ended by CRLF."""
        reply = self.help(b"HELP SEND")
        self.assertEqual(reply.label, "help")
        self.assertEqual(
            reply.payload,
            b"SEND [@queue] <message>\r\n"
            b"  queue a message (the text, or a literal)\r\n"
            b"  system: queue\r\n"
            b"  errors: too-big\r\n"
            b"  any command may get: bad-args, internal, line-too-long, too-big\r\n",
        )

    def test_case_and_aliases(self) -> None:
        """The verb may be in any case, or an alias."""
        self.assertEqual(self.help(b"help send").payload, self.help(b"HELP SEND").payload)
        quit_help = self.help(b"HELP xit").payload.decode()
        self.assertTrue(quit_help.startswith("QUIT\r\n"))
        self.assertIn("  aliases: EXIT, XIT\r\n", quit_help)

    def test_session_verbs_say_so(self) -> None:
        """Verbs that open a UDP session say so."""
        self.assertIn("starts a session", self.help(b"HELP FOLLOW").payload.decode())
        self.assertNotIn("starts a session", self.help(b"HELP TWEET").payload.decode())

    def test_unknown_verb(self) -> None:
        """HELP of a verb the server does not have is ERR unknown-command."""
        reply = self.help(b"HELP nosuch")
        self.assertEqual((reply.code, reply.text), ("unknown-command", "unknown command 'NOSUCH'; HELP lists commands"))

    def test_too_many_words(self) -> None:
        """HELP takes one verb at most."""
        self.assertEqual(self.help(b"HELP SEND RECV").code, "bad-args")

    def test_every_verb_declares_its_errors(self) -> None:
        """Every verb declares the error codes it can answer with, all of them from the specification."""
        self.assertEqual(help.ERROR_CODES, SPEC_ERROR_CODES)
        self.assertLessEqual(set(help.COMMON_ERRORS), SPEC_ERROR_CODES)
        for system in self.table.help.systems:
            for command in system.commands:
                self.assertIsNotNone(command.errors, command.verb)
                self.assertLessEqual(set(command.errors), SPEC_ERROR_CODES, command.verb)
                self.assertEqual(len(command.errors), len(set(command.errors)), command.verb)

    def test_session_verbs_may_be_full(self) -> None:
        """A verb that opens a UDP session can be refused with full: it declares it."""
        for system in self.table.help.systems:
            for command in system.commands:
                if command.remembers_client:
                    self.assertIn("full", command.errors, command.verb)

    def test_undefined_error_code_refused(self) -> None:
        """Declaring a code the protocol does not have is a programming error caught at start-up."""
        commands = CommandSet("test")
        commands.verb("ODD", summary="s", errors=("oops",))(lambda broker, session: Ok())
        self.assertRaises(ValueError, CommandTable, [commands])

    def test_sets_of_one_system_merge(self) -> None:
        """Two sets naming the same system share one heading; the first description wins."""
        first, second = CommandSet("extra", "first"), CommandSet("extra", "second")
        first.verb("ONE", summary="s", errors=())(lambda broker, session: Ok())
        second.verb("TWO", summary="s", errors=())(lambda broker, session: Ok())
        payload = CommandTable([first, second]).dispatch(make_broker(), None, parse_request(b"HELP")).payload
        self.assertIn(b"== extra: first\r\nONE", payload)
        self.assertIn(b"\r\nTWO", payload)
        self.assertNotIn(b"second", payload)
