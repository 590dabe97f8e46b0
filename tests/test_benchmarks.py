"""The benchmark's report: medians, ratios and targets from load-generator samples (no load is run)."""

from __future__ import annotations

from twisted.trial import unittest

from benchmarks.driver import SMOKE, Plan
from benchmarks.report import summarize, table

PLAN = Plan(**{**SMOKE.__dict__, "queue_matrix": ((50, 1), (50, 32)), "reps": 2})


def _queue(rate: float, p99_us: float = 1000.0) -> dict:
    return {
        "rate": rate,
        "p50_us": 500.0,
        "p99_us": p99_us,
        "p999_us": 2000.0,
        "server_cpu": 1.0,
        "client_cpu": 0.2,
        "errors": 0,
    }


def _samples() -> dict[str, list[dict]]:
    return {
        "queue/50/1/msgsvc-memory": [_queue(60_000), _queue(40_000), _queue(50_000)],
        "queue/50/1/redis": [_queue(100_000)] * 3,
        "queue/50/1/reference": [_queue(1_000)] * 3,
        "queue/50/32/msgsvc-memory": [_queue(80_000)] * 3,
        "queue/50/32/redis": [_queue(800_000)] * 3,
        "idle/msgsvc-memory": [{"conns": 10000, "bytes_per_conn": 3000.0}],
        "bulk/gen/msgsvc-memory": [{"mib_per_s": 900.0}],
        "bulk/gen/c-sender": [{"mib_per_s": 1800.0}],
    }


class ReportTests(unittest.TestCase):
    """Summaries and targets."""

    def setUp(self) -> None:
        self.summary = summarize(_samples(), {"msgsvc-sqlite": "unsupported store"}, PLAN)
        self.targets = {target["target"]: target for target in self.summary["targets"]}

    def test_medians(self) -> None:
        """Each row reports the median of its repetitions."""
        self.assertEqual(self.summary["queue"]["C=50 P=1"]["msgsvc-memory"]["units_per_s"], 50_000)

    def test_ratio_targets(self) -> None:
        """Ratios compare servers of the same run, and say whether the target holds."""
        self.assertEqual(self.targets["queue C=50 P=1 vs Redis"]["measured"], 0.5)
        self.assertTrue(self.targets["queue C=50 P=1 vs Redis"]["holds"])
        self.assertFalse(self.targets["queue C=50 P=32 vs Redis"]["holds"])
        self.assertEqual(self.targets["queue C=50 P=1 vs thread-per-connection"]["measured"], 50.0)

    def test_upper_bounds(self) -> None:
        """Latency and memory targets are upper bounds."""
        self.assertTrue(self.targets["queue C=50 P=1 p99 latency"]["holds"])
        self.assertAlmostEqual(self.targets["idle RSS per connection"]["measured"], 3000 / 1024)
        self.assertTrue(self.targets["idle RSS per connection"]["holds"])

    def test_missing_rows_are_not_applicable(self) -> None:
        """A target without measurements (no SQLite store, no GET row) holds neither way."""
        self.assertIsNone(self.targets["SQLite store vs memory store (worst row)"]["holds"])
        self.assertIsNone(self.targets["bulk GET vs C sender"]["holds"])

    def test_table_marks_unavailable_store(self) -> None:
        """The table shows the SQLite row as not available until the store exists."""
        results = {
            "summary": self.summary,
            "plan": PLAN.__dict__,
            "machine": {
                "cpu": "cpu",
                "cpus": 2,
                "memory_gib": 1,
                "kernel": "k",
                "python": "3",
                "twisted": "t",
                "redis": None,
            },
        }
        text = table(results)
        self.assertIn("n/a (store not available)", text)
        self.assertIn("0.50x the C sender", text)
