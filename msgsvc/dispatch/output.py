# -*- test-case-name: tests.test_pipeline_output,tests.test_pipeline,tests.test_tcp,tests.test_lifecycle -*-
"""What reaches a client's sink: streamed bodies under flow control, events, and the ways a connection ends.

:class:`StreamOutput` is the lower half of :class:`msgsvc.dispatch.pipeline.ReplyPipeline`,
which decides which reply goes next. A streamed DATA body is pulled from its
source only while the client takes it; events wait while a body is written
(one must never land inside a payload), and a client that lets too many pile
up is dropped. Reading is paused for as long as any reason holds (too many
replies outstanding, output not taken, the connection closing).

A front end implements :class:`ReplySink`: a socket, a TLS or a WebSocket
connection alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from twisted.logger import Logger
from twisted.python.failure import Failure

from msgsvc.domain.events import Bye, Event
from msgsvc.protocol.events import encode_event
from msgsvc.protocol.wire import CRLF, BodySource, Reply, StreamedData

log = Logger()

MAX_EVENT_BACKLOG = 1 << 20
"""Event bytes queued for a client that does not read before it is disconnected."""
CHUNK = 256 * 1024
"""Bytes pulled from a streamed body per write."""

PIPELINE, OUTPUT, CLOSING = 1, 2, 4
"""Why reading is paused: too many replies outstanding, output not taken, the connection closing."""


class ReplySink(Protocol):
    """The front end's side of a pipeline: where its output goes and how the client's input is held back."""

    def write(self, data: bytes) -> None:
        """Bytes that complete a unit: a whole reply or event, or the last bytes of a streamed reply."""

    def write_part(self, data: bytes) -> None:
        """The header or a piece of a streamed reply's body: more of the same reply follows."""

    def pause_reading(self) -> None:
        """Stop reading the client's input."""

    def resume_reading(self) -> None:
        """Read the client's input again."""

    def end(self) -> None:
        """Close once everything written has been sent."""

    def abort(self) -> None:
        """Close at once, dropping what has not been sent."""

    def progress(self) -> None:
        """The client took some of the output: it is there, not idle."""

    def log_failure(self, failure: Failure) -> None:
        """A bug: log it, saying which client, and drop half-read input (the pipeline answers ERR internal)."""


@dataclass(slots=True)
class _Body:
    """The payload of a streamed DATA reply being written."""

    source: BodySource
    remaining: int


class StreamOutput:
    """Writes a client's replies, bodies and events to its sink, and ends the connection.

    ``closing``, ``ended`` and ``output_paused`` are for reading; they are set here.
    """

    __slots__ = (
        "_backlog",
        "_body",
        "_held",
        "_held_bytes",
        "_paused",
        "client_id",
        "closing",
        "ended",
        "output_paused",
        "sink",
    )

    def __init__(self, sink: ReplySink) -> None:
        self.sink = sink
        self.client_id: int | None = None
        """The broker's id for the client, for log lines."""
        self.closing = False
        """Nothing more is run: a reply that closes is due, or the connection is ending."""
        self.ended = False
        """The sink was told to close (``end``, ``abort``) or the connection is gone: nothing more is written."""
        self.output_paused = False
        """The client is not taking what is sent (the transport's buffer is full)."""
        self._body: _Body | None = None
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._backlog = 0
        """Event bytes written while the client was not taking output."""
        self._paused = 0
        """Why reading is paused: PIPELINE, OUTPUT, CLOSING or'ed together."""

    @property
    def streaming(self) -> bool:
        """A streamed body is being written."""
        return self._body is not None

    @property
    def stalled(self) -> bool:
        """Output waits for the client to read (nothing else can move it on)."""
        return self.output_paused or self._body is not None

    @property
    def held_bytes(self) -> int:
        """Bytes of events held back while a body is written."""
        return self._held_bytes

    def _write_reply(self, reply: Reply, tag: bytes | None) -> None:
        if isinstance(reply, StreamedData):
            self.sink.write_part(reply.header(tag))
            self._body = _Body(reply.source, reply.size)
        else:
            self.sink.write(reply.encode(tag))
        if reply.closes:
            self.end()

    def _pump(self) -> bool:
        """Write the streamed body while the client keeps up; True once it is complete."""
        body = self._body
        assert body is not None  # called only while a body is being written
        written = False
        while body.remaining and not self.output_paused:
            chunk = body.source.read(min(CHUNK, body.remaining))
            if not chunk:
                log.error("a streamed payload ended {n} bytes early", n=body.remaining, category="ERROR")
                self._body = None
                body.source.close()
                self.abort()
                return False
            body.remaining -= len(chunk)
            self.sink.write_part(chunk)
            written = True
        if written:
            self._progress()
        if body.remaining:
            return False
        self._body = None
        body.source.close()
        self.sink.write(CRLF)
        held, self._held = self._held, []
        self._held_bytes = 0
        for line in held:
            self._write_event(line)
        return True

    # -- flow control: the transport's buffer fills and drains ------------------

    def pause_output(self) -> None:
        """The client does not take what is sent: stop writing bodies and reading commands."""
        self.output_paused = True
        self._pause(OUTPUT)

    def _pause(self, reason: int) -> None:
        if not self._paused and not self.ended:
            self.sink.pause_reading()
        self._paused |= reason

    def _resume(self, reason: int) -> None:
        if self._paused & reason:
            self._paused &= ~reason
            if not self._paused and not self.closing:
                self.sink.resume_reading()

    def _progress(self) -> None:
        if not self.ended:
            self.sink.progress()

    # -- events --------------------------------------------------------------------

    def send_event(self, event: Event) -> None:
        """Tell the client of an event, as soon as no payload is being written."""
        self._write_event(encode_event(event))

    def _write_event(self, line: bytes) -> None:
        if self.closing:
            return
        if self._body is not None:
            if self._held_bytes + len(line) > MAX_EVENT_BACKLOG:
                self._drop_slow_reader()
                return
            self._held.append(line)
            self._held_bytes += len(line)
            return
        if self.output_paused:
            self._backlog += len(line)
            if self._backlog > MAX_EVENT_BACKLOG:
                self._drop_slow_reader()
                return
        self.sink.write(line)

    def _drop_slow_reader(self) -> None:
        log.warn("client {id} does not read its events; disconnecting", id=self.client_id, category="CONNECTION")
        self.abort()

    # -- endings -----------------------------------------------------------------------

    def bye(self, reason: str) -> None:
        """Say ``* BYE <reason>`` and close; at once if a payload is being written (a BYE cannot go inside it)."""
        if self.ended:
            return
        if self._body is not None:
            self.abort()
            return
        self.sink.write(encode_event(Bye(reason)))
        self.end()

    def end(self) -> None:
        """Close once what has been written is sent."""
        if self.ended:
            return
        self.closing = self.ended = True
        self.sink.end()

    def abort(self) -> None:
        """Close at once: for a client that does not read, which nothing else would free."""
        self.closing = self.ended = True
        self.sink.abort()

    def _discard(self) -> None:
        """Release the body being written and the events held behind it."""
        if self._body is not None:
            self._body.source.close()
            self._body = None
        self._held = []
        self._held_bytes = 0


def release(reply: Reply | None) -> None:
    """Close the source of a streamed reply that will not be sent."""
    if isinstance(reply, StreamedData):
        reply.source.close()
