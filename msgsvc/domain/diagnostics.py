# -*- test-case-name: tests.test_diagnostics,tests.test_diagnostics_stream -*-
"""Diagnostics: generated payloads for GEN and timed packet streams for STREAM."""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from msgsvc.domain.events import Packet
from msgsvc.domain.session import Session

log = Logger()

PERIOD = 94
"""GEN's pattern repeats every 94 bytes: byte i is ``chr(33 + i % 94)``, ``!`` to ``~``."""
_BLOCK = bytes(range(33, 33 + PERIOD)) * 2800
"""263,200 bytes of the pattern (more than a TCP chunk plus one period), sliced at any offset."""

MAX_INTERVAL_MS = 60000


def pattern(offset: int, size: int) -> bytes:
    """``size`` bytes of the GEN pattern starting at byte ``offset``."""
    start = offset % PERIOD
    if start + size <= len(_BLOCK):
        return _BLOCK[start : start + size]
    parts = []
    while size:
        part = _BLOCK[start : start + size]
        parts.append(part)
        size -= len(part)
        start = 0
    return b"".join(parts)


class PatternSource:
    """The body of ``GEN n``, computed piece by piece as the client reads it; never held whole."""

    def __init__(self, size: int) -> None:
        self._offset = 0
        self._remaining = size

    def read(self, size: int) -> bytes:
        """The next ``size`` bytes at most; b"" once all n were read (or after close)."""
        size = min(size, self._remaining)
        data = pattern(self._offset, size)
        self._offset += size
        self._remaining -= size
        return data

    def close(self) -> None:
        """Stop: nothing more is produced."""
        self._remaining = 0


@dataclass(eq=False)
class _Stream:
    """One client's STREAM: ``count`` packets, one per interval."""

    session: Session
    count: int
    loop: LoopingCall = field(init=False)  # set right after: it calls back with the stream
    sent: int = 0


class Diagnostics:
    """Per-client packet streams on the broker's clock: one stream per client."""

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._streams: dict[Session, _Stream] = {}

    def stream(self, session: Session, interval_ms: int, count: int) -> int | None:
        """Start sending ``session`` ``count`` packets, the first one interval from now.

        A stream the client still had running is stopped and replaced; returns how
        many packets it had sent, or None if none was running.
        """
        previous = self._streams.get(session)
        running = previous is not None and previous.loop.running
        sent = self.stop(session)
        replaced = sent if running else None
        stream = _Stream(session, count)
        stream.loop = LoopingCall(self._tick, stream)
        stream.loop.clock = self._clock
        self._streams[session] = stream
        stream.loop.start(interval_ms / 1000, now=False).addErrback(self._failed, stream)
        return replaced

    def _tick(self, stream: _Stream) -> None:
        if not stream.session.open:
            stream.loop.stop()
            return
        stream.sent += 1
        now_ms = round(self._clock.seconds() * 1000)
        stream.session.client.send_event(Packet(stream.sent, stream.count, now_ms))
        if stream.sent >= stream.count:
            stream.loop.stop()

    def _failed(self, failure: Failure, stream: _Stream) -> None:
        log.failure("stream of client {client} failed", failure, client=stream.session.id, category="ERROR")

    def stop(self, session: Session) -> int:
        """End the client's stream (running or finished); returns how many packets it sent, 0 if none."""
        stream = self._streams.pop(session, None)
        if stream is None:
            return 0
        if stream.loop.running:
            stream.loop.stop()
        return stream.sent

    def session_closed(self, session: Session) -> None:
        """A client left: its stream stops."""
        self.stop(session)
