"""The reply pipeline on its own, over a fake sink: order, commit waits, flow control, bodies, events, closing."""

from __future__ import annotations

import ast
import os
from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from msgsvc.dispatch.pipeline import (
    CHUNK,
    MAX_EVENT_BACKLOG,
    MAX_PENDING_REPLIES,
    ReplyPipeline,
    answer_alone,
)
from msgsvc.dispatch.table import INTERNAL_ERROR, Unconfirmed
from msgsvc.domain.events import Chat
from msgsvc.protocol.wire import Err, Ok, Reply, StreamedData
from tests.helpers import ROOT

INTERNAL = INTERNAL_ERROR.encode()


class FakeSink:
    """Records what a pipeline does to its front end; like a socket, it pauses output past ``limit`` bytes."""

    def __init__(self, limit: int | None = None) -> None:
        self.pipeline: ReplyPipeline | None = None
        self.limit = limit
        self.units: list[bytes] = []
        """What was written, one entry per unit: a part written with write_part joins the unit it starts."""
        self.open_unit = False
        self.buffered = 0
        self.reading = True
        self.ended = False
        self.aborted = False
        self.progress_count = 0
        self.failures: list[Failure] = []

    @property
    def data(self) -> bytes:
        """Everything written."""
        return b"".join(self.units)

    def _add(self, data: bytes, last: bool) -> None:
        assert not (self.ended or self.aborted), "written after the end"
        if self.open_unit and self.units:
            self.units[-1] += data
        else:
            self.units.append(data)
        self.open_unit = not last
        self.buffered += len(data)
        if self.limit is not None and self.buffered > self.limit and not self.pipeline.output_paused:
            self.pipeline.pause_output()

    def write(self, data: bytes) -> None:
        self._add(data, last=True)

    def write_part(self, data: bytes) -> None:
        self._add(data, last=False)

    def drain(self) -> bytes:
        """The client reads what is buffered; the transport resumes the pipeline."""
        taken = self.data
        self.units, self.buffered = [], 0
        if self.pipeline.output_paused:
            self.pipeline.resume_output()
        return taken

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def end(self) -> None:
        self.ended = True

    def abort(self) -> None:
        self.aborted = True

    def progress(self) -> None:
        self.progress_count += 1

    def log_failure(self, failure: Failure) -> None:
        self.failures.append(failure)


class FakeDurability:
    """Changes wait for a commit the test makes happen."""

    def __init__(self) -> None:
        self.pending = True
        self.waiting: list[Callable[[Exception | None], None]] = []

    def when_committed(self, callback: Callable[[Exception | None], None]) -> None:
        self.waiting.append(callback)

    def commit(self, error: Exception | None = None) -> None:
        waiting, self.waiting = self.waiting, []
        for callback in waiting:
            callback(error)


class Source:
    """A streamed body of ``size`` bytes of b'z'."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.reads = 0
        self.closed = False

    def read(self, size: int) -> bytes:
        self.reads += 1
        size = min(size, self.left)
        self.left -= size
        return b"z" * size

    def close(self) -> None:
        self.closed = True


class _Unencodable(Ok):
    """A reply whose encoding fails: a bug on the reply path."""

    def encode(self, tag: bytes | None = None) -> bytes:
        raise ZeroDivisionError("cannot encode")


class PipelineTestCase(SynchronousTestCase):
    """A pipeline over a fake sink and a durability the test commits."""

    limit: int | None = None

    def setUp(self) -> None:
        self.sink = FakeSink(self.limit)
        self.durability = FakeDurability()
        self.pipeline = ReplyPipeline(self.sink, self.durability)
        self.sink.pipeline = self.pipeline

    def streamed(self, size: int) -> tuple[StreamedData, Source]:
        source = Source(size)
        return StreamedData(size, "big", source), source


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


class StreamingTests(PipelineTestCase):
    """Streamed bodies under flow control, and the events they hold back."""

    limit = 65536

    def test_body_pulled_only_while_taken(self) -> None:
        """A body is read a chunk at a time while the client takes it; the next reply follows its CRLF."""
        reply, source = self.streamed(3 * CHUNK)
        self.pipeline.deliver(reply, b"g")
        self.pipeline.deliver(Ok("PONG"), None)
        self.assertEqual(source.reads, 1)
        self.assertTrue(self.pipeline.stalled)
        self.assertFalse(self.sink.reading)
        received = b"".join(self.sink.drain() for _ in range(3))
        self.assertEqual(received, b"#g DATA 786432 big\r\n" + b"z" * (3 * CHUNK) + b"\r\nOK PONG\r\n")
        self.assertTrue(source.closed)
        self.assertTrue(self.sink.reading)
        self.assertFalse(self.pipeline.streaming)

    def test_body_is_one_unit(self) -> None:
        """Header, chunks and CRLF of a streamed reply make one unit (a WebSocket message); events are their own."""
        reply, _ = self.streamed(2 * CHUNK)
        self.pipeline.deliver(reply, None)
        self.pipeline.send_event(Chat("bob", "hi"))
        self.sink.limit = None
        self.sink.drain()
        self.assertEqual(self.sink.units, [b"z" * CHUNK + b"\r\n", b"* CHAT bob hi\r\n"])

    def test_taking_output_is_progress(self) -> None:
        """Each time the client takes output, the front end hears it is not idle."""
        reply, _ = self.streamed(2 * CHUNK)
        self.pipeline.deliver(reply, None)
        before = self.sink.progress_count
        self.sink.drain()
        self.assertGreater(self.sink.progress_count, before)

    def test_events_held_behind_a_body(self) -> None:
        """An event never lands inside a payload: it follows the body's CRLF."""
        reply, _ = self.streamed(2 * CHUNK)
        self.pipeline.deliver(reply, None)
        self.pipeline.send_event(Chat("bob", "hi"))
        self.assertNotIn(b"CHAT", self.sink.data)
        self.assertEqual(self.pipeline.held_bytes, len(b"* CHAT bob hi\r\n"))
        received = self.sink.drain() + self.sink.drain()
        self.assertTrue(received.endswith(b"z\r\n* CHAT bob hi\r\n"))

    def test_held_events_bounded(self) -> None:
        """A client that leaves a body unread while events pile up is dropped before they pass the bound."""
        reply, _ = self.streamed(2 * CHUNK)
        self.pipeline.deliver(reply, None)
        chat = Chat("x", "y" * 1000)
        while not self.sink.aborted:
            self.pipeline.send_event(chat)
        self.assertLessEqual(self.pipeline.held_bytes, MAX_EVENT_BACKLOG)

    def test_unread_events_bounded(self) -> None:
        """A client whose output is paused and that does not read its events is dropped."""
        self.pipeline.pause_output()
        chat = Chat("x", "y" * 1000)
        for _ in range(MAX_EVENT_BACKLOG // 1000 + 1):
            self.pipeline.send_event(chat)
        self.assertTrue(self.sink.aborted)

    def test_short_body_aborts(self) -> None:
        """A source that ends before its announced size drops the connection (no reply can follow a cut payload)."""
        source = Source(10)
        self.pipeline.deliver(StreamedData(20, "short", source), None)
        self.assertTrue(self.sink.aborted)
        self.assertTrue(source.closed)
        self.flushLoggedErrors()

    def test_failing_source_answers_internal_or_drops(self) -> None:
        """A source that raises while the client resumes is a bug: reported once, the connection dropped."""
        reply, source = self.streamed(2 * CHUNK)
        self.pipeline.deliver(reply, None)

        def broken(size: int) -> bytes:
            raise ZeroDivisionError("disk gone")

        source.read = broken
        self.sink.drain()
        self.assertEqual(len(self.sink.failures), 1)
        self.assertTrue(self.sink.aborted)


class ClosingTests(PipelineTestCase):
    """QUIT, closing errors, half-closes, BYE and the connection going away."""

    def test_closing_reply_waits_its_turn(self) -> None:
        """A reply that closes stops later commands at once, and ends the connection once written."""
        recv = Deferred()
        self.pipeline.deliver(recv, None)
        self.pipeline.deliver(Ok("bye", closes=True), None)
        self.assertTrue(self.pipeline.closing)
        self.assertFalse(self.sink.ended)
        recv.callback(Ok("message"))
        self.assertEqual(self.sink.data, b"OK message\r\nOK bye\r\n")
        self.assertTrue(self.sink.ended)

    def test_closing_error(self) -> None:
        """A closing error stops reading, is written after the replies due, then the connection ends."""
        recv = Deferred()
        self.pipeline.deliver(recv, None)
        self.pipeline.closing_error(Err("line-too-long", "too long"), None)
        self.assertFalse(self.sink.reading)
        recv.callback(Ok())
        self.assertEqual(self.sink.data, b"OK\r\nERR line-too-long too long\r\n")
        self.assertTrue(self.sink.ended)

    def test_half_close(self) -> None:
        """Input that ended is answered in full, then the connection ends."""
        recv = Deferred()
        self.pipeline.deliver(recv, None)
        self.pipeline.input_ended()
        self.assertFalse(self.sink.ended)
        recv.callback(Ok())
        self.assertTrue(self.sink.ended)

    def test_bye(self) -> None:
        """BYE is written, then the connection ends; nothing is written after it."""
        self.pipeline.bye("shutdown")
        self.pipeline.deliver(Ok("late"), None)
        self.pipeline.send_event(Chat("bob", "late"))
        self.assertEqual(self.sink.data, b"* BYE shutdown\r\n")
        self.assertTrue(self.sink.ended)

    def test_bye_mid_body_aborts(self) -> None:
        """A BYE cannot go inside a payload: the connection is dropped instead."""
        self.sink.limit = 10
        reply, _ = self.streamed(CHUNK)
        self.pipeline.deliver(reply, None)
        self.pipeline.bye("idle-timeout")
        self.assertTrue(self.sink.aborted)
        self.assertNotIn(b"BYE", self.sink.data)

    def test_lost_releases_every_source(self) -> None:
        """A connection gone releases the body being written, those waiting, and those that complete later."""
        self.sink.limit = 10
        writing, first = self.streamed(CHUNK)
        waiting, second = self.streamed(CHUNK)
        late, third = self.streamed(CHUNK)
        later = Deferred()
        self.pipeline.deliver(writing, None)
        self.pipeline.deliver(waiting, None)
        self.pipeline.deliver(later, None)
        self.pipeline.lost()
        later.callback(late)
        self.assertEqual((first.closed, second.closed, third.closed), (True, True, True))

    def test_bug_answers_internal_once(self) -> None:
        """A reply that fails to encode is reported once, answered ERR internal, and the connection ends."""
        later = Deferred()
        self.pipeline.deliver(later, b"t")
        later.callback(_Unencodable("x"))
        self.pipeline.fail(Failure(ZeroDivisionError("again")))
        self.assertEqual(self.sink.data, INTERNAL)
        self.assertEqual(len(self.sink.failures), 1)
        self.assertTrue(self.sink.ended)
        self.assertTrue(self.pipeline.failed)


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
