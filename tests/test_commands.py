"""Tests for the command table: argument binding, errors, HELP."""

from twisted.internet.defer import fail
from twisted.trial.unittest import SynchronousTestCase

from msgsvc.commands import Arg, CommandSet, CommandTable, Refused, Text
from msgsvc.wire import Data, Ok, parse_request
from tests.helpers import make_broker


def request(line: bytes, literal: bytes | None = None):
    parsed = parse_request(line)
    parsed.literal = literal
    return parsed


class BindingTests(SynchronousTestCase):
    """How a request's arguments reach the handler."""

    def setUp(self):
        self.calls = []
        commands = CommandSet()
        record = self.calls.append

        @commands.verb("PUT", Arg("queue", optional=True, default="default", prefix="@"), Text("text"), summary="s")
        def put(broker, session, queue, text):
            record((queue, text))
            return Ok()

        @commands.verb("NUM", Arg("n", int), Arg("m", int, optional=True, default=7), summary="s")
        def num(broker, session, n, m):
            record((n, m))
            return Ok()

        @commands.verb("BOOM", summary="s")
        def boom(broker, session):
            raise ZeroDivisionError()

        @commands.verb("NOPE", summary="s")
        def nope(broker, session):
            return fail(Refused("no-msg", "none here"))

        self.table = CommandTable([commands])

    def dispatch(self, line: bytes, literal: bytes | None = None):
        return self.table.dispatch(make_broker(), None, request(line, literal))

    def test_text_after_single_space(self):
        """Text starts after exactly one space and keeps inner, leading and trailing spaces."""
        self.dispatch(b"PUT  a  b ")
        self.dispatch(b"PUT @q  x")
        self.assertEqual(self.calls, [("default", b" a  b "), ("q", b" x")])

    def test_missing_text_is_empty(self):
        """A missing text argument is the empty text."""
        self.dispatch(b"PUT")
        self.dispatch(b"PUT @q")
        self.assertEqual(self.calls, [("default", b""), ("q", b"")])

    def test_literal_fills_last_argument(self):
        """A literal is the last argument, binary bytes included."""
        self.dispatch(b"PUT @q", literal=b"\r\n\x00")
        self.assertEqual(self.calls, [("q", b"\r\n\x00")])

    def test_literal_with_extra_words(self):
        """Words left over beside a literal are refused."""
        reply = self.dispatch(b"PUT hello", literal=b"x")
        self.assertEqual(reply.code, "bad-args")
        self.assertEqual(self.calls, [])

    def test_converted_and_optional(self):
        """Arguments are converted; optional ones take their default."""
        self.dispatch(b"NUM 3")
        self.dispatch(b"NUM  4  5")
        self.assertEqual(self.calls, [(3, 7), (4, 5)])

    def test_bad_args(self):
        """Missing, unconvertible, non-ASCII or extra arguments get ERR bad-args with the usage."""
        for line in (b"NUM", b"NUM x", b"NUM \xff", b"NUM 1 2 3"):
            reply = self.dispatch(line)
            self.assertEqual(reply.code, "bad-args", line)
            self.assertIn("usage: NUM <n> [m]", reply.text)
        self.assertEqual(self.calls, [])

    def test_unknown_command(self):
        """Unknown verbs get ERR unknown-command naming the verb safely."""
        reply = self.dispatch(b"FROB\x00 x")
        self.assertEqual(reply.code, "unknown-command")
        self.assertIn("FROB\\x00", reply.text)

    def test_bad_tag(self):
        """A malformed tag gets ERR bad-args."""
        self.assertEqual(self.dispatch(b"#bad! NUM 1").code, "bad-args")

    def test_handler_exception_is_internal(self):
        """A bug in a handler becomes ERR internal and is logged."""
        reply = self.dispatch(b"BOOM")
        self.assertEqual(reply.code, "internal")
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_refused_in_deferred(self):
        """A Refused raised inside a Deferred becomes its ERR reply."""
        reply = self.successResultOf(self.dispatch(b"NOPE"))
        self.assertEqual((reply.code, reply.text), ("no-msg", "none here"))

    def test_help_lists_every_verb(self):
        """HELP is generated from the table: every verb with its usage and summary."""
        reply = self.dispatch(b"HELP")
        self.assertIsInstance(reply, Data)
        lines = reply.payload.decode().splitlines()
        self.assertEqual([line.split()[0] for line in lines], ["BOOM", "HELP", "NOPE", "NUM", "PUT"])
        self.assertIn("PUT [@queue] <text>", reply.payload.decode())

    def test_duplicate_verbs_refused(self):
        """Defining a verb twice is a programming error caught at start-up."""
        commands = CommandSet()
        commands.verb("PING", summary="a")(lambda broker, session: Ok())
        commands.verb("PING", summary="b")(lambda broker, session: Ok())
        self.assertRaises(ValueError, CommandTable, [commands])
