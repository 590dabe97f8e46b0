# -*- test-case-name: tests.test_probe_stats -*-
"""What ``msgsvc-probe`` computes: GEN's pattern check and a STREAM's packet statistics.

The pattern is written out here again rather than taken from the server's code, so that a
mistake there shows up as a failed check instead of agreeing with itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

PERIOD = bytes(range(33, 33 + 94))
"""GEN's pattern: byte i is ``chr(33 + i % 94)``, ``!`` to ``~`` over and over."""
_CHUNK = PERIOD * 700
"""65,800 bytes of the pattern (a whole number of periods): compared against one chunk at a time."""


def first_difference(payload: bytes) -> int | None:
    """The index of the first byte of ``payload`` that breaks GEN's pattern; None if every byte fits."""
    view = memoryview(payload)
    for start in range(0, len(payload), len(_CHUNK)):
        piece = view[start : start + len(_CHUNK)]
        if piece != _CHUNK[: len(piece)]:
            for index, (got, wanted) in enumerate(zip(piece, _CHUNK, strict=False)):
                if got != wanted:
                    return start + index
    return None


def gen_problem(payload: bytes, size: int) -> str | None:
    """Why ``payload`` is not the reply to ``GEN size``, in one line; None when it is."""
    at = first_difference(payload)
    if at is not None:
        wanted = bytes([PERIOD[at % len(PERIOD)]])
        return f"pattern differs at byte {at}: expected {wanted!r}, got {payload[at : at + 1]!r}"
    if len(payload) != size:
        return f"got {len(payload)} bytes, expected {size}"
    return None


def mib_per_second(size: int, seconds: float) -> float:
    """Throughput in MiB/s (infinite when no time could be measured)."""
    return size / (1 << 20) / seconds if seconds > 0 else float("inf")


@dataclass(frozen=True)
class Arrival:
    """One ``* PKT`` event: its sequence number and when it arrived (seconds, any monotonic clock)."""

    seq: int
    at: float


@dataclass(frozen=True)
class StreamStats:
    """What arrived of a stream of ``expected`` packets."""

    expected: int
    received: int
    """Distinct sequence numbers from 1 to ``expected`` that arrived."""
    lost: int
    reordered: int
    """Arrivals whose sequence number is lower than one seen before (duplicates excluded)."""
    duplicates: int
    """Arrivals of a sequence number that had already arrived."""
    jitter_ms: float | None
    """See :func:`jitter_ms`; None with fewer than two packets."""

    @property
    def intact(self) -> bool:
        """Every packet arrived (reordering, duplicates and jitter are reported, not failures)."""
        return self.lost == 0


def jitter_ms(times: Sequence[float], interval_ms: float) -> float | None:
    """Mean absolute difference between each gap of consecutive arrivals and the interval, in ms.

    ``times`` are arrival times in seconds, in arrival order; None with fewer than two.
    """
    gaps = [(later - earlier) * 1000 for earlier, later in pairwise(times)]
    if not gaps:
        return None
    return sum(abs(gap - interval_ms) for gap in gaps) / len(gaps)


def stream_stats(arrivals: Sequence[Arrival], expected: int, interval_ms: float) -> StreamStats:
    """Loss, reordering, duplicates and jitter of ``arrivals`` (in arrival order) of a stream of ``expected``.

    Sequence numbers outside 1..expected are ignored; jitter is taken over the first
    arrival of each packet.
    """
    seen: set[int] = set()
    highest = 0
    reordered = duplicates = 0
    firsts: list[float] = []
    for arrival in arrivals:
        if not 1 <= arrival.seq <= expected:
            continue
        if arrival.seq in seen:
            duplicates += 1
            continue
        if arrival.seq < highest:
            reordered += 1
        highest = max(highest, arrival.seq)
        seen.add(arrival.seq)
        firsts.append(arrival.at)
    received = len(seen)
    return StreamStats(expected, received, expected - received, reordered, duplicates, jitter_ms(firsts, interval_ms))


def stream_report(stats: StreamStats, interval_ms: int) -> list[str]:
    """The lines ``msgsvc-probe stream`` prints."""
    packets = (
        f"packets: {stats.received}/{stats.expected} received, {stats.lost} lost, "
        f"{stats.reordered} reordered, {stats.duplicates} duplicates"
    )
    if stats.jitter_ms is None:
        return [packets, "jitter: n/a (fewer than 2 packets)"]
    return [packets, f"jitter: {stats.jitter_ms:.2f} ms (mean deviation of the gaps from {interval_ms} ms)"]
