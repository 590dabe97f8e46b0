"""The reply pipeline on its own: request order, commit waits, answer_alone (UDP), and its layering."""

from __future__ import annotations

import ast
import os

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from msgsvc.dispatch.pipeline import (
    MAX_PENDING_REPLIES,
    ReplyPipeline,
    answer_alone,
)
from msgsvc.dispatch.table import INTERNAL_ERROR, Unconfirmed
from msgsvc.protocol.wire import Ok, Reply
from tests.helpers import ROOT
from tests.pipeline_helpers import INTERNAL, FakeDurability, PipelineTestCase


class OrderTests(PipelineTestCase):
    """Replies leave in request order, whatever each one waits for."""

    def test_ready_reply_goes_straight_out(self) -> None:
        """A reply nothing waits ahead of is written at once and takes no slot."""
        self.pipeline.deliver(Ok("a"), b"t1")
        self.assertEqual(self.sink.units, [b"#t1 OK a\r\n"])
        self.assertEqual(self.pipeline.pending, 0)

    def test_ready_replies_wait_behind_a_waiting_one(self) -> None:
        """Pipelined replies keep their order behind a reply that is not ready, whichever completes first."""
        first, third = Deferred(), Deferred()
        self.pipeline.deliver(first, b"a")
        self.pipeline.deliver(Ok("second"), b"b")
        self.pipeline.deliver(third, b"c")
        third.callback(Ok("third"))
        self.assertEqual(self.sink.data, b"")
        self.assertEqual(self.pipeline.pending, 3)
        first.callback(Ok("first"))
        self.assertEqual(self.sink.units, [b"#a OK first\r\n", b"#b OK second\r\n", b"#c OK third\r\n"])
        self.assertEqual(self.pipeline.pending, 0)

    def test_unconfirmed_waits_for_one_commit(self) -> None:
        """Replies to changes wait for the commit, with one wait per commit however many there are."""
        self.pipeline.deliver(Unconfirmed(Ok("1 queued")), None)
        self.pipeline.deliver(Unconfirmed(Ok("2 queued")), None)
        self.pipeline.deliver(Ok("PONG"), None)
        self.assertEqual((self.sink.data, len(self.durability.waiting)), (b"", 1))
        self.durability.commit()
        self.assertEqual(self.sink.data, b"OK 1 queued\r\nOK 2 queued\r\nOK PONG\r\n")

    def test_commit_before_an_earlier_reply_is_ready(self) -> None:
        """A committed reply still waits for the reply before it; a later commit wait is its own."""
        recv = Deferred()
        self.pipeline.deliver(recv, None)
        self.pipeline.deliver(Unconfirmed(Ok("sent")), None)
        self.durability.commit()
        self.assertEqual(self.sink.data, b"")
        self.pipeline.deliver(Unconfirmed(Ok("later")), None)
        recv.callback(Ok("received"))
        self.assertEqual(self.sink.data, b"OK received\r\nOK sent\r\n")
        self.durability.commit()
        self.assertEqual(self.sink.data, b"OK received\r\nOK sent\r\nOK later\r\n")

    def test_failed_commit_answers_internal(self) -> None:
        """A reply whose changes could not be committed becomes ERR internal; a streamed one's source is released."""
        reply, source = self.streamed(10)
        self.pipeline.deliver(Unconfirmed(Ok("queued")), b"t")
        self.pipeline.deliver(Unconfirmed(reply), None)
        self.durability.commit(OSError("disk full"))
        self.assertEqual(self.sink.data, b"#t " + INTERNAL + INTERNAL)
        self.assertTrue(source.closed)

    def test_too_many_pending_pauses_reading(self) -> None:
        """MAX_PENDING_REPLIES outstanding replies stop the reading until they drain."""
        waiting = [Deferred() for _ in range(MAX_PENDING_REPLIES)]
        for result in waiting:
            self.pipeline.deliver(result, None)
        self.assertFalse(self.sink.reading)
        waiting[0].callback(Ok())
        self.assertTrue(self.sink.reading)
        for result in waiting[1:]:
            result.callback(Ok())
        self.assertEqual(self.sink.data, b"OK\r\n" * MAX_PENDING_REPLIES)

    def test_failed_deferred_answers_internal(self) -> None:
        """A command's Deferred that fails (a bug: the table never lets one) is answered ERR internal in place."""
        broken = Deferred()
        self.pipeline.deliver(broken, None)
        self.pipeline.deliver(Ok("next"), None)
        broken.errback(ZeroDivisionError("lost"))
        self.assertEqual(self.sink.data, INTERNAL + b"OK next\r\n")
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


class JoinedTests(PipelineTestCase):
    """A pipeline whose sink takes several replies in one write (a byte stream)."""

    def setUp(self) -> None:
        super().setUp()
        self.pipeline = ReplyPipeline(self.sink, self.durability, joins=True)
        self.sink.pipeline = self.pipeline

    def test_released_together_written_once(self) -> None:
        """Replies a commit releases together are one write, in order."""
        self.pipeline.deliver(Unconfirmed(Ok("1 queued")), None)
        self.pipeline.deliver(Ok("PONG"), b"t")
        self.pipeline.deliver(Unconfirmed(Ok("2 queued")), None)
        self.durability.commit()
        self.assertEqual(self.sink.units, [b"OK 1 queued\r\n#t OK PONG\r\nOK 2 queued\r\n"])

    def test_closing_reply_written_after_the_joined(self) -> None:
        """A reply that closes follows the joined replies before it, and nothing after it is written."""
        self.pipeline.deliver(Unconfirmed(Ok("1 queued")), None)
        self.pipeline.deliver(Ok("PONG"), None)
        self.pipeline.deliver(Ok("bye", closes=True), None)
        self.durability.commit()
        self.assertEqual(self.sink.units, [b"OK 1 queued\r\nOK PONG\r\n", b"OK bye\r\n"])
        self.assertTrue(self.sink.ended)

    def test_body_after_the_joined(self) -> None:
        """A streamed body starts after the joined replies before it."""
        first = Deferred()
        self.pipeline.deliver(first, None)
        self.pipeline.deliver(Ok("PONG"), None)
        streamed, source = self.streamed(5)
        self.pipeline.deliver(streamed, None)
        first.callback(Ok("first"))
        self.assertEqual(self.sink.data, b"OK first\r\nOK PONG\r\nDATA 5 big\r\nzzzzz\r\n")
        self.assertTrue(source.closed)
        self.assertEqual(self.sink.units[0], b"OK first\r\nOK PONG\r\n")


class AnswerAloneTests(SynchronousTestCase):
    """The commit wait of a front end that answers each request on its own (UDP)."""

    def setUp(self) -> None:
        self.durability = FakeDurability()
        self.answers: list[tuple[Reply, str]] = []
        self.failures: list[tuple[Failure, str]] = []
        self.broken = False

    def answer(self, result: Reply | Unconfirmed | Deferred[Reply]) -> None:
        answer_alone(result, self.durability, self.record, self.failed, "exchange")

    def record(self, reply: Reply, exchange: str) -> None:
        if self.broken:
            raise ZeroDivisionError("a bug while answering")
        self.answers.append((reply, exchange))

    def failed(self, failure: Failure, exchange: str) -> None:
        self.failures.append((failure, exchange))

    def test_ready(self) -> None:
        """A ready reply is answered at once."""
        self.answer(Ok("now"))
        self.assertEqual(self.answers, [(Ok("now"), "exchange")])

    def test_after_commit(self) -> None:
        """An unconfirmed reply is answered after the commit, ERR internal if it failed."""
        self.answer(Unconfirmed(Ok("a")))
        self.answer(Unconfirmed(Ok("b")))
        self.assertEqual(self.answers, [])
        self.durability.commit(OSError("disk full"))
        self.assertEqual([reply for reply, _ in self.answers], [INTERNAL_ERROR, INTERNAL_ERROR])

    def test_later(self) -> None:
        """A reply that is not ready is answered when it is; a bug while answering goes to ``failed``."""
        later = Deferred()
        self.answer(later)
        self.broken = True
        later.callback(Ok("late"))
        self.assertEqual(len(self.failures), 1)
        self.assertEqual(self.failures[0][1], "exchange")


class LayeringTests(SynchronousTestCase):
    """The pipeline and the framing know no transport."""

    def imports(self, module: str) -> list[str]:
        """The modules ``msgsvc/<module>`` imports from."""
        with open(os.path.join(ROOT, "msgsvc", module)) as file:
            tree = ast.parse(file.read())
        found = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        return found + [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]

    def test_no_transport_imports(self) -> None:
        """The pipeline and the framing import neither the front ends nor Twisted's transports."""
        for module in ("dispatch/pipeline.py", "dispatch/output.py", "dispatch/table.py", "protocol/framing.py"):
            for name in self.imports(module):
                self.assertFalse(name.startswith("msgsvc.transports"), (module, name))
                if module != "dispatch/table.py":  # the table takes a clock (IReactorTime), not a transport
                    self.assertNotIn(name, ("twisted.internet.interfaces", "twisted.internet.protocol"), module)
