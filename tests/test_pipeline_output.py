"""The reply pipeline's output: streamed bodies under flow control, held events, how a connection ends."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from msgsvc.dispatch.pipeline import (
    CHUNK,
    MAX_EVENT_BACKLOG,
)
from msgsvc.domain.events import Chat
from msgsvc.protocol.wire import Err, Ok, StreamedData
from tests.pipeline_helpers import INTERNAL, PipelineTestCase, Source


class _Unencodable(Ok):
    """A reply whose encoding fails: a bug on the reply path."""

    def encode(self, tag: bytes | None = None) -> bytes:
        raise ZeroDivisionError("cannot encode")


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
