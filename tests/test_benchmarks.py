"""The benchmark's report: medians, ratios and targets from samples; the amplification table; the UDP smoke rows."""

from __future__ import annotations

import json
import os
import sys

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

from benchmarks import amplification
from benchmarks.driver import SMOKE, Plan
from benchmarks.report import summarize, table
from tests.helpers import CHECKOUT_ENV, ROOT, temp_dir

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
        "udp/gen/udp/0": [_udp(20, 1.0), _udp(20, 2.0), _udp(20, 0.5)],
        "udp/gen/udp/0.05": [{**_udp(20, 4.0), "forwarded": 95, "dropped": 5}],
        "udp/gen/tcp/0": [_udp(20, 0.1)],
    }


def _udp(mib: int, seconds: float) -> dict:
    size = mib * 1024 * 1024
    return {
        "size": size,
        "bytes": size,
        "seconds": seconds,
        "mib_per_s": mib / seconds,
        "server_cpu_seconds": seconds / 2,
        "client_cpu": 0.4,
    }


class ReportTests(unittest.TestCase):
    """Summaries and targets."""

    def setUp(self) -> None:
        factors = {"PING": 2.25, "GEN": 3.0, "HELP": 3.0}
        self.summary = summarize(_samples(), {"msgsvc-sqlite": "unsupported store"}, PLAN, factors)
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
        self.assertIn("udp GEN 20 MiB   UDP, 5% loss each way", text)
        self.assertIn("  3.00  GEN HELP\n  2.25  PING", text)

    def test_udp_rows(self) -> None:
        """UDP rows: medians per case, the lossy relay's drop share, the ratio to TCP of the same run."""
        gen = self.summary["udp"]["gen"]
        self.assertEqual(gen["udp"]["mib_per_s"], 20.0)
        self.assertEqual(gen["udp"]["server_cpu"], 0.5)
        self.assertAlmostEqual(gen["udp"]["vs_tcp"], 0.1)
        self.assertAlmostEqual(gen["udp-loss"]["vs_tcp"], 0.025)
        self.assertEqual(gen["udp-loss"]["dropped_share"], 0.05)
        self.assertNotIn("vs_tcp", gen["tcp"])
        self.assertIsNone(gen["tcp"]["server_cpu"])  # 0.1 s: too short for /proc's 10 ms ticks

    def test_amplification_target(self) -> None:
        """The largest amplification factor is an upper bound of 3."""
        target = self.targets["largest amplification factor for an unvalidated peer"]
        self.assertEqual((target["measured"], target["holds"]), (3.0, True))
        self.assertEqual(self.summary["amplification"]["groups"][0], {"factor": 3.0, "verbs": ["GEN", "HELP"]})


class AmplificationTableTests(unittest.SynchronousTestCase):
    """benchmarks.amplification: the factors per verb and their grouping."""

    def test_groups(self) -> None:
        """Verbs of equal factor (to two decimals) go together, sorted; the largest factor comes first."""
        grouped = amplification.groups(
            {"XIT": 2.6666667, "PING": 2.25, "GEN": 3.0, "ACK": 3.0, "QUIT": 2.0, "A": 2.667}
        )
        self.assertEqual(grouped, [(3.0, ["ACK", "GEN"]), (2.67, ["A", "XIT"]), (2.25, ["PING"]), (2.0, ["QUIT"])])

    def test_factors(self) -> None:
        """Measured in memory: a 9-byte GEN 65000 is held to the budget, a PING's worst is plain (9 bytes for 4)."""
        factors = amplification.factors({"GEN": [b"GEN 65000"], "PING": [b"PING"]})
        self.assertEqual(factors["GEN"], 3.0)
        self.assertEqual(factors["PING"], len(b"OK PONG\r\n") / len(b"PING"))


class SmokeTests(unittest.TestCase):
    """``python -m benchmarks --smoke --only udp`` runs the UDP rows for real, in a few seconds."""

    timeout = 120

    async def test_udp_smoke(self) -> None:
        """Every UDP row and the amplification table end up in results.json."""
        out = temp_dir(self)
        args = ["-m", "benchmarks", "--smoke", "--only", "udp", "--out", out]
        stdout, stderr, code = await getProcessOutputAndValue(
            sys.executable, args, env=CHECKOUT_ENV, path=ROOT, reactor=reactor
        )
        self.assertEqual(code, 0, stderr.decode(errors="replace"))
        with open(os.path.join(out, "results.json")) as results:
            summary = json.load(results)["summary"]
        for op in ("gen", "send"):
            self.assertEqual(sorted(summary["udp"][op]), ["tcp", "udp", "udp-loss"])
            self.assertGreater(summary["udp"][op]["udp-loss"]["mib_per_s"], 0)
        self.assertLessEqual(summary["amplification"]["largest"], 3.0)
        self.assertIn(b"udp GEN 200 kB", stdout)
