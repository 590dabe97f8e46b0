"""Shared fixtures for the reply pipeline tests: a fake sink, a durability the test commits, a body source."""

from __future__ import annotations

from collections.abc import Callable

from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from msgsvc.dispatch.pipeline import (
    ReplyPipeline,
)
from msgsvc.dispatch.table import INTERNAL_ERROR
from msgsvc.protocol.wire import StreamedData

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
