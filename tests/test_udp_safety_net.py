"""The UDP safety net: a bug while handling one datagram becomes one ERR internal reply, logged once."""

from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from msgsvc.dispatch.commands import CommandSet, Text
from msgsvc.dispatch.table import CommandTable
from msgsvc.dispatch.verbs import general, queue
from msgsvc.protocol import framing
from msgsvc.protocol.wire import Err, Ok
from tests.helpers import UdpHarness, make_broker
from tests.udp_helpers import ALICE


class Exploding(Err):
    """A reply whose encoding fails: a bug in the server."""

    def encode(self, tag: bytes | None = None) -> bytes:
        raise RuntimeError("cannot encode")


class ExplodingSink:
    """A literal sink that fails while the literal is written."""

    def write(self, data: bytes) -> None:
        raise RuntimeError("disk on fire")

    def finish(self) -> Any:
        raise AssertionError("not reached")

    def abort(self) -> None:
        pass


class SafetyNetTests(SynchronousTestCase):
    """A bug while handling one datagram becomes one ERR internal reply, logged once; the server carries on."""

    def setUp(self) -> None:
        self.broker = make_broker()
        self.later: Deferred[Err] = Deferred()
        commands = CommandSet()
        commands.verb("BADREPLY", summary="s")(lambda broker, session: Exploding("bad-args", "x"))
        commands.verb("LATER", summary="s")(lambda broker, session: self.later)
        commands.verb("BADJOIN", summary="s", remembers_client=True)(lambda broker, session: Exploding("bad-args", "x"))
        commands.verb("SINK", Text("data"), summary="s", literal_sink=lambda broker, session: ExplodingSink())(
            lambda broker, session, data: Ok()
        )
        self.udp = UdpHarness(self.broker, CommandTable([general.commands, queue.commands, commands]))

    def assertInternal(self, datagram: bytes, tag: bytes = b"") -> None:
        """The datagram gets exactly one ERR internal reply, and one error is logged."""
        self.udp.send(datagram, ALICE)
        self.assertEqual(self.udp.datagrams(ALICE), [tag + b"ERR internal internal error; it has been logged\r\n"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.udp.command(b"PING", ALICE).text, "PONG")
        self.assertEqual(self.broker.sessions, [])

    def test_parse_failure(self) -> None:
        """An exception while parsing the datagram is answered ERR internal."""

        def broken(line: bytes) -> None:
            raise RuntimeError("parser bug")

        self.patch(framing, "parse_request", broken)
        self.udp.send(b"PING", ALICE)
        self.assertEqual(self.udp.datagrams(ALICE), [b"ERR internal internal error; it has been logged\r\n"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_literal_sink_failure(self) -> None:
        """An exception in a literal sink is answered ERR internal with the request's tag."""
        self.assertInternal(b"#s1 SINK {3}\nabc", b"#s1 ")

    def test_reply_failure(self) -> None:
        """An exception while encoding a ready reply is answered ERR internal."""
        self.assertInternal(b"BADREPLY")

    def test_failed_session_verb_leaves_no_session(self) -> None:
        """A session verb that fails with a bug does not leave its session behind."""
        self.assertInternal(b"BADJOIN")

    def test_later_reply_failure(self) -> None:
        """An exception while encoding a reply that came later is answered ERR internal, once."""
        self.udp.send(b"#l LATER", ALICE)
        self.assertEqual(self.udp.datagrams(ALICE), [])
        self.later.callback(Exploding("bad-args", "x"))
        self.assertEqual(self.udp.datagrams(ALICE), [b"#l ERR internal internal error; it has been logged\r\n"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_retry_gets_the_same_error(self) -> None:
        """A retried tagged datagram gets the saved ERR internal without running again."""
        self.assertInternal(b"#s2 SINK {3}\nabc", b"#s2 ")
        self.udp.send(b"#s2 SINK {3}\nabc", ALICE)
        self.assertEqual(self.udp.datagrams(ALICE), [b"#s2 ERR internal internal error; it has been logged\r\n"])
        self.assertEqual(self.flushLoggedErrors(RuntimeError), [])

    def test_failure_after_reply_sends_nothing_more(self) -> None:
        """A failure after the reply went out is logged, but the client gets no second reply."""
        close = self.broker.close_session

        def broken(session: Any) -> None:
            close(session)
            raise RuntimeError("cleanup bug")

        self.patch(self.broker, "close_session", broken)
        self.udp.send(b"PING", ALICE)
        self.assertEqual(self.udp.datagrams(ALICE), [b"OK PONG\r\n"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
