"""The TCP safety net: an unexpected exception becomes ERR internal and a clean close."""

from twisted.internet.defer import Deferred

from msgsvc.dispatch.commands import CommandSet, Text
from msgsvc.dispatch.table import CommandTable
from msgsvc.dispatch.verbs import general
from msgsvc.protocol.wire import Ok, Request
from msgsvc.transports import literals
from tests.tcp_helpers import Connected, _Sink


class _Unencodable(Ok):
    """A reply whose encoding fails: a bug in the reply path."""

    def encode(self, tag: bytes | None = None) -> bytes:
        raise ZeroDivisionError("cannot encode")


class SafetyNetTests(Connected):
    """An unexpected exception in framing becomes ERR internal and a clean close, never a dropped connection."""

    def setUp(self) -> None:
        super().setUp()
        parse = literals.parse_request

        def exploding_parse(line: bytes) -> Request | None:
            if line == b"BOOM":
                raise ZeroDivisionError("a framing bug")
            return parse(line)

        self.patch(literals, "parse_request", exploding_parse)

    def test_exception_becomes_err_internal(self) -> None:
        """Replies before the failure are delivered, then ERR internal, then the connection closes."""
        c = self.client()
        c.send(b"PING\nBOOM\nPING\n")
        self.assertEqual(c.output(), b"OK PONG\r\nERR internal internal error; it has been logged\r\n")
        self.assertTrue(c.transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_err_internal_waits_for_earlier_replies(self) -> None:
        """ERR internal takes its place behind a reply still being waited for."""
        c = self.client()
        c.send(b"RECV 5\nBOOM\n")
        self.assertEqual(c.output(), b"")
        self.assertFalse(c.transport.disconnecting)
        self.clock.advance(5)
        self.assertEqual([r.code for r in c.replies()], ["empty", "internal"])
        self.assertTrue(c.transport.disconnecting)
        self.flushLoggedErrors(ZeroDivisionError)

    def test_logged_once(self) -> None:
        """More input after the failure is ignored: one traceback, one reply."""
        c = self.client()
        c.send(b"BOOM\n")
        c.send(b"BOOM\nPING\n" * 100)
        self.assertEqual([r.code for r in c.replies()], ["internal"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_exception_in_literal_sink(self) -> None:
        """A sink that fails mid-literal: ERR internal, the sink is aborted, the connection closes."""
        sinks = []

        class FailingSink(_Sink):
            def write(self, data: bytes) -> None:
                raise ZeroDivisionError("disk on fire")

        def new_sink(broker, session) -> FailingSink:
            sinks.append(FailingSink())
            return sinks[-1]

        extra = CommandSet()

        @extra.verb("PUT", Text("data"), summary="stream data to a sink", literal_sink=new_sink)
        def put(broker, session, data: str) -> Ok:
            return Ok(data)

        c = self.connect(CommandTable([general.commands, extra]))
        c.output()
        c.send(b"PUT {6}\nabc")
        self.assertEqual([r.code for r in c.replies()], ["internal"])
        self.assertTrue(sinks[0].aborted)
        self.assertTrue(c.transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_exception_in_deferred_reply(self) -> None:
        """A reply that fails to encode when its Deferred fires becomes ERR internal too."""
        pending = Deferred()
        extra = CommandSet()

        @extra.verb("LATER", summary="a reply that comes later")
        def later(broker, session) -> Deferred:
            return pending

        c = self.connect(CommandTable([general.commands, extra]))
        c.output()
        c.send(b"LATER\n")
        pending.callback(_Unencodable("x"))
        self.assertEqual([r.code for r in c.replies()], ["internal"])
        self.assertTrue(c.transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_huge_literal_marker_digits(self) -> None:
        """A literal marker of 5000 digits gets exactly one ERR (too-big, or internal at worst) and a close."""
        c = self.client()
        c.send(b"SEND {" + b"9" * 5000 + b"}\nPING\n")
        (reply,) = c.replies()
        self.assertIn(reply.code, ("too-big", "internal"))
        self.assertTrue(c.transport.disconnecting)
        self.flushLoggedErrors(ValueError)
