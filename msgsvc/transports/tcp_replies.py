# -*- test-case-name: tests.test_tcp,tests.test_lifecycle -*-
"""The output side of a TCP connection: replies in request order, streamed bodies, events.

:class:`ReplyPipeline` is a mixin for :class:`msgsvc.transports.tcp.Connection`. Every
command gets a slot in order; a slot's reply goes out once every reply before
it has, and a streamed DATA body is pulled from its source only while the
transport takes it (push-producer flow control). Events wait while a body is
being written, since one must never land inside a payload.

How the connection ends, pauses its reading or counts progress is the host's
business: it provides ``transport``, ``broker``, ``session`` and the hooks
listed at the end of the class.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from msgsvc.dispatch.table import INTERNAL_ERROR, Unconfirmed
from msgsvc.domain.broker import Broker
from msgsvc.domain.events import Event
from msgsvc.protocol.events import encode_event
from msgsvc.protocol.wire import CRLF, BodySource, Reply, StreamedData

log = Logger()

MAX_PENDING_REPLIES = 64
"""Replies a client may have outstanding before the server stops reading its commands."""
MAX_EVENT_BACKLOG = 1 << 20
"""Event bytes queued for a client that does not read before it is disconnected."""
CHUNK = 256 * 1024
"""Bytes pulled from a streamed body per write."""


@dataclass(slots=True)
class _Slot:
    """A reply position in the pipeline, filled when its command completes."""

    tag: bytes | None
    reply: Reply | None = None
    unconfirmed: bool = False
    """The reply waits for the commit of the changes made before it."""


@dataclass(slots=True)
class _Body:
    """The payload of a streamed DATA reply being written."""

    source: BodySource
    remaining: int


class ReplyPipeline:
    """Writes a connection's replies in order, its streamed bodies under flow control, and its events."""

    broker: Broker
    _closing: bool
    """Nothing more is run or sent but the replies already due (set by a closing reply, and by the host)."""

    def _init_replies(self) -> None:
        self._slots: list[_Slot] = []
        """Replies in order; at most MAX_PENDING_REPLIES, so a list (56 bytes empty; a deque is 760) will do."""
        self._body: _Body | None = None
        self._held_events: list[bytes] = []
        self._held_bytes = 0
        self._output_paused = False
        """The transport's buffer is full: the client is not taking what we send."""
        self._event_backlog = 0
        self._input_ended = False
        self._awaiting_commit = False

    @property
    def _stalled(self) -> bool:
        """Output waits for the client to read (nothing else can move it on)."""
        return self._output_paused or self._body is not None

    def _deliver(self, result: Reply | Unconfirmed | Deferred[Reply], tag: bytes | None) -> None:
        """Give a command's result its place among the replies."""
        if isinstance(result, Reply):
            if result.closes:
                self._closing = True  # after QUIT nothing more runs, though its reply may still wait its turn
            if not self._slots and self._body is None:  # nothing ahead of it: out at once
                self._write_reply(result, tag)
                if self._body is not None:
                    self._flush()  # start streaming the body
                return
            self._slots.append(_Slot(tag, result))
            self._flush()
        elif isinstance(result, Unconfirmed):
            if result.reply.closes:
                self._closing = True
            self._slots.append(_Slot(tag, result.reply, unconfirmed=True))
            if not self._awaiting_commit:
                self._awaiting_commit = True
                self.broker.durability.when_committed(self._committed)
        else:
            slot = _Slot(tag)
            self._slots.append(slot)
            result.addCallback(self._completed, slot)
        if len(self._slots) >= MAX_PENDING_REPLIES:
            self._pause_reading("pipeline")

    def _completed(self, reply: Reply, slot: _Slot) -> None:
        slot.reply = reply
        self._flush()

    def _committed(self, error: Exception | None) -> None:
        """Every reply held so far may go: its changes are durable (or, on error, it becomes ERR internal)."""
        self._awaiting_commit = False
        for slot in self._slots:
            if slot.unconfirmed:
                slot.unconfirmed = False
                if error is not None:
                    slot.reply = INTERNAL_ERROR
        self._flush()

    def _flush(self) -> None:
        """Write every completed reply at the head of the pipeline."""
        while self.transport is not None and not self.transport.disconnecting:
            if self._body is not None and not self._pump():
                return
            if not self._slots or self._slots[0].reply is None or self._slots[0].unconfirmed:
                break
            slot = self._slots.pop(0)
            self._write_reply(slot.reply, slot.tag)
        if self.transport is None or self.transport.disconnecting:
            return
        if self._input_ended and not self._slots and self._body is None:
            self._end()  # half-closed by the client, and every reply is out
        elif len(self._slots) < MAX_PENDING_REPLIES:
            self._resume_reading("pipeline")

    def _write_reply(self, reply: Reply, tag: bytes | None) -> None:
        if isinstance(reply, StreamedData):
            self.transport.write(reply.header(tag))
            self._body = _Body(reply.source, reply.size)
        else:
            self.transport.write(reply.encode(tag))
        if reply.closes:
            self._end()

    def _pump(self) -> bool:
        """Write the streamed body while the client keeps up; True once it is complete."""
        body = self._body
        written = False
        while body.remaining and not self._output_paused:
            chunk = body.source.read(min(CHUNK, body.remaining))
            if not chunk:
                log.error("a streamed payload ended {n} bytes early", n=body.remaining, category="ERROR")
                self._body = None
                body.source.close()
                self._abort()
                return False
            body.remaining -= len(chunk)
            self.transport.write(chunk)
            written = True
        if written:
            self._output_progress()
        if body.remaining:
            return False
        self._body = None
        body.source.close()
        self.transport.write(CRLF)
        held, self._held_events = self._held_events, []
        self._held_bytes = 0
        for line in held:
            self._write_event(line)
        return True

    def _discard_replies(self) -> None:
        """The connection is gone: drop what waits and release the body's source."""
        if self._body is not None:
            self._body.source.close()
            self._body = None
        self._slots.clear()
        self._held_events = []
        self._held_bytes = 0

    # -- IPushProducer: the transport's buffer fills and drains ------------

    def pauseProducing(self) -> None:
        """The transport's buffer is full: stop writing bodies and reading commands."""
        self._output_paused = True
        self._pause_reading("output")

    def resumeProducing(self) -> None:
        """The transport drained: the client reads, so it is not idle; carry on."""
        self._output_paused = False
        self._event_backlog = 0
        self._output_progress()
        self._flush()
        if not self._output_paused:  # writing the body may have filled the buffer again
            self._resume_reading("output")

    def stopProducing(self) -> None:
        """The connection is going away; connectionLost does the cleanup."""

    # -- IClient.send_event ------------------------------------------------

    def send_event(self, event: Event) -> None:
        self._write_event(encode_event(event))

    def _write_event(self, line: bytes) -> None:
        if self._closing:
            return
        if self._body is not None:
            if self._held_bytes + len(line) > MAX_EVENT_BACKLOG:
                self._drop_slow_reader()
                return
            self._held_events.append(line)
            self._held_bytes += len(line)
            return
        if self._output_paused:
            self._event_backlog += len(line)
            if self._event_backlog > MAX_EVENT_BACKLOG:
                self._drop_slow_reader()
                return
        self.transport.write(line)

    def _drop_slow_reader(self) -> None:
        log.warn("client {id} does not read its events; disconnecting", id=self.session.id, category="CONNECTION")
        self._abort()

    # -- provided by the host ----------------------------------------------

    def _end(self) -> None:
        """Close once what has been written is sent."""
        raise NotImplementedError

    def _abort(self) -> None:
        """Close at once, dropping what has not been sent."""
        raise NotImplementedError

    def _pause_reading(self, reason: str) -> None:
        raise NotImplementedError

    def _resume_reading(self, reason: str) -> None:
        raise NotImplementedError

    def _output_progress(self) -> None:
        """The client took some of our output: it is still there."""
        raise NotImplementedError
