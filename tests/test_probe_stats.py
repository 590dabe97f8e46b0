"""The statistics msgsvc-probe computes: GEN pattern checks, stream loss and jitter, packet collection."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from msgsvc.cli.probe import Packets
from msgsvc.cli.probe_stats import (
    PERIOD,
    Arrival,
    StreamStats,
    first_difference,
    gen_problem,
    jitter_ms,
    stream_report,
    stream_stats,
)
from msgsvc.client import Event


def _arrivals(*seqs: int, interval: float = 0.02) -> list[Arrival]:
    """Arrivals of ``seqs`` in this order, exactly ``interval`` seconds apart."""
    return [Arrival(seq, index * interval) for index, seq in enumerate(seqs)]


class PatternTests(SynchronousTestCase):
    """Checking GEN's pattern."""

    def test_intact(self) -> None:
        """The pattern of any length, across chunk boundaries, has no difference."""
        payload = (PERIOD * 2000)[:150001]
        self.assertIsNone(first_difference(payload))
        self.assertIsNone(gen_problem(payload, 150001))
        self.assertEqual(payload[:3], b'!"#')

    def test_first_difference(self) -> None:
        """The first broken byte is found, also past the first chunk."""
        payload = bytearray((PERIOD * 2000)[:150000])
        payload[140000] = ord("x") if payload[140000] != ord("x") else ord("y")
        payload[149000] = 0
        self.assertEqual(first_difference(bytes(payload)), 140000)
        self.assertRegex(gen_problem(bytes(payload), 150000) or "", r"\Apattern differs at byte 140000: expected ")

    def test_length(self) -> None:
        """A payload of the pattern but the wrong length is reported as such."""
        self.assertEqual(gen_problem(PERIOD[:10], 11), "got 10 bytes, expected 11")
        self.assertEqual(gen_problem(b"", 0), None)


class StreamStatsTests(SynchronousTestCase):
    """Loss, reordering, duplicates and jitter of a stream."""

    def test_all_in_order(self) -> None:
        """Every packet, in order, exactly on time: nothing lost, no jitter."""
        stats = stream_stats(_arrivals(1, 2, 3, 4), 4, 20)
        self.assertEqual(stats, StreamStats(4, 4, 0, 0, 0, stats.jitter_ms))
        self.assertAlmostEqual(stats.jitter_ms or 0.0, 0.0)
        self.assertTrue(stats.intact)

    def test_loss(self) -> None:
        """Missing sequence numbers are lost; a lost packet makes the stream not intact."""
        stats = stream_stats(_arrivals(1, 2, 4), 5, 20)
        self.assertEqual((stats.received, stats.lost), (3, 2))
        self.assertFalse(stats.intact)

    def test_reordering(self) -> None:
        """An arrival lower than one seen before is reordered (once per arrival)."""
        stats = stream_stats(_arrivals(1, 3, 2, 5, 4), 5, 20)
        self.assertEqual((stats.received, stats.lost, stats.reordered, stats.duplicates), (5, 0, 2, 0))

    def test_duplicates(self) -> None:
        """A repeated sequence number is a duplicate, not reordering nor a second receipt."""
        stats = stream_stats(_arrivals(1, 2, 2, 3, 1), 3, 20)
        self.assertEqual((stats.received, stats.lost, stats.reordered, stats.duplicates), (3, 0, 0, 2))

    def test_strays_ignored(self) -> None:
        """Sequence numbers outside 1..count count for nothing."""
        stats = stream_stats(_arrivals(0, 1, 7, 2), 2, 20)
        self.assertEqual((stats.received, stats.lost, stats.reordered, stats.duplicates), (2, 0, 0, 0))

    def test_jitter(self) -> None:
        """Jitter is the mean absolute deviation of consecutive gaps from the interval."""
        self.assertAlmostEqual(jitter_ms([0.0, 0.020, 0.050, 0.060], 20) or 0.0, 20 / 3)
        self.assertIsNone(jitter_ms([0.5], 20))
        self.assertIsNone(jitter_ms([], 20))

    def test_report(self) -> None:
        """The printed lines, also with too few packets for a jitter."""
        self.assertEqual(
            stream_report(StreamStats(3, 1, 2, 0, 0, None), 20),
            ["packets: 1/3 received, 2 lost, 0 reordered, 0 duplicates", "jitter: n/a (fewer than 2 packets)"],
        )
        self.assertEqual(
            stream_report(StreamStats(2, 2, 0, 1, 1, 1.5), 20)[1],
            "jitter: 1.50 ms (mean deviation of the gaps from 20 ms)",
        )


class PacketsTests(SynchronousTestCase):
    """Collecting a stream's packets until all arrived or the deadline."""

    def test_complete(self) -> None:
        """Collection ends as soon as every packet arrived; other events and other streams are ignored."""
        clock = Clock()
        packets = Packets(clock, clock.seconds)
        packets.start(2)
        finished = Deferred.fromCoroutine(packets.finish(5))
        packets.on_event(Event("PKT", "1 2 1000"))
        packets.on_event(Event("CHAT", "bob hi"))
        packets.on_event(Event("PKT", "1 9 1000"))
        packets.on_event(Event("PKT", "garbage"))
        clock.advance(0.02)
        packets.on_event(Event("PKT", "2 2 1020"))
        self.assertEqual(self.successResultOf(finished), [Arrival(1, 0.0), Arrival(2, 0.02)])
        self.assertEqual(clock.getDelayedCalls(), [])
        packets.on_event(Event("PKT", "2 2 1020"))  # late: no longer collected
        self.assertEqual(packets.stop(), [])

    def test_deadline(self) -> None:
        """At the deadline collection ends with what arrived."""
        clock = Clock()
        packets = Packets(clock, clock.seconds)
        packets.start(3)
        finished = Deferred.fromCoroutine(packets.finish(1.0))
        packets.on_event(Event("PKT", "2 3 1000"))
        clock.advance(0.999)
        self.assertNoResult(finished)
        clock.advance(0.001)
        self.assertEqual(self.successResultOf(finished), [Arrival(2, 0.0)])
