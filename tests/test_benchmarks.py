"""The benchmark's report: medians, ratios and targets from samples; the amplification table; the UDP smoke rows."""

from __future__ import annotations

import json
import os
import sys

from twisted.internet import reactor
from twisted.internet.testing import StringTransport
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

from benchmarks import amplification, bare
from benchmarks.driver import SMOKE, Plan
from benchmarks.report import CHAT_BASELINE, chat_baseline, summarize, table, worst_ratio
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


def _results(summary: dict) -> dict:
    """What table() reads: the summary, the plan, the machine."""
    return {
        "summary": summary,
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
        text = table(_results(self.summary))
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


PLAN3 = Plan(**{**SMOKE.__dict__, "queue_matrix": ((1, 1), (50, 1), (50, 32)), "reps": 3})


def _issue16_samples() -> dict[str, list[dict]]:
    """Every row of the issue 16 matrix, with rates chosen so that some targets hold and some do not."""
    rates = {
        (1, 1): {"msgsvc-memory": 9_000, "msgsvc-sqlite": 7_200, "bare-twisted-line": 9_500, "redis": 10_000},
        (50, 1): {"msgsvc-memory": 60_000, "msgsvc-sqlite": 40_000, "bare-twisted-line": 60_000, "redis": 100_000},
        (50, 32): {"msgsvc-memory": 90_000, "msgsvc-sqlite": 72_000, "bare-twisted-line": 150_000, "redis": 800_000},
    }
    samples = {
        f"queue/{conns}/{pipeline}/{server}": [_queue(rate, p99_us=2500.0)] * 3
        for (conns, pipeline), servers in rates.items()
        for server, rate in servers.items()
    }
    for (conns, pipeline), memory in ((1, 1), 9_000), ((50, 1), 60_000), ((50, 32), 90_000):
        samples[f"queue/{conns}/{pipeline}/msgsvc-redis"] = [_queue(memory / 4)]
        samples[f"queue/{conns}/{pipeline}/msgsvc-redis-2nodes"] = [_queue(memory / 2)]
        samples[f"queue/{conns}/{pipeline}/bare-twisted-batched"] = [_queue(memory * 2)]
    samples["chat/msgsvc-memory"] = [
        {"event_rate": 1_200_000.0, "rate": 12_000.0, "p99_us": 9000.0, "server_cpu": 1.0}
    ] * 3
    samples["idle/msgsvc-memory"] = [{"conns": 10000, "bytes_per_conn": 3200.0}]
    return samples


class Issue16TargetTests(unittest.SynchronousTestCase):
    """The issue 16 rows (bare Twisted, beanstalkd, the msgsvc Redis store on one and two nodes) and targets."""

    def setUp(self) -> None:
        unavailable = {"beanstalkd": "beanstalkd not installed (apt-get install beanstalkd)"}
        self.summary = summarize(_issue16_samples(), unavailable, PLAN3, None, chat_base=700_000.0)
        self.targets = {target["target"]: target for target in self.summary["targets"]}

    def test_redis_ratios(self) -> None:
        """C=50 P=32 and C=50 P=1 need half of Redis, C=1 P=1 needs 0.8 of it."""
        self.assertEqual(self.targets["queue C=50 P=32 vs Redis"]["required"], 0.5)
        self.assertFalse(self.targets["queue C=50 P=32 vs Redis"]["holds"])
        self.assertEqual(self.targets["queue C=50 P=1 vs Redis"]["measured"], 0.6)
        self.assertTrue(self.targets["queue C=50 P=1 vs Redis"]["holds"])
        self.assertEqual(self.targets["queue C=1 P=1 vs Redis"]["measured"], 0.9)
        self.assertTrue(self.targets["queue C=1 P=1 vs Redis"]["holds"])
        self.assertFalse(self.targets["queue C=50 P=1 p99 latency"]["holds"])  # 2.5 ms

    def test_bare_twisted_worst_row(self) -> None:
        """At least 0.9x the bare LineReceiver at every point: the worst row decides, and is named."""
        target = self.targets["queue vs bare Twisted LineReceiver (worst row)"]
        self.assertEqual((target["measured"], target["row"], target["holds"]), (0.6, "C=50 P=32", False))
        self.assertEqual(worst_ratio(self.summary, "msgsvc-memory", "bare-twisted-line"), ("C=50 P=32", 0.6))
        self.assertEqual(worst_ratio(self.summary, "msgsvc-memory", "beanstalkd"), (None, None))

    def test_sqlite_worst_row(self) -> None:
        """The SQLite store needs 0.7x the memory store at every point."""
        target = self.targets["SQLite store vs memory store (worst row)"]
        self.assertAlmostEqual(target["measured"], 40_000 / 60_000)
        self.assertEqual((target["row"], target["holds"], target["required"]), ("C=50 P=1", False, 0.7))

    def test_chat_against_baseline(self) -> None:
        """The chat fan-out target is 1.5x the recorded baseline."""
        target = self.targets["chat fan-out vs baseline (benchmarks/baselines)"]
        self.assertAlmostEqual(target["measured"], 1_200_000 / 700_000)
        self.assertTrue(target["holds"])
        self.assertEqual(self.summary["chat"]["baseline_deliveries_per_s"], 700_000.0)

    def test_chat_without_baseline(self) -> None:
        """Without a baseline the chat target is n/a, not a failure."""
        summary = summarize(_issue16_samples(), {}, PLAN3)
        target = next(t for t in summary["targets"] if t["target"].startswith("chat fan-out"))
        self.assertIsNone(target["holds"])

    def test_idle_bound(self) -> None:
        """Idle connections may cost at most 3 KiB each."""
        target = self.targets["idle RSS per connection"]
        self.assertEqual((target["required"], target["at_least"], target["holds"]), (3.0, False, False))

    def test_new_rows_in_table(self) -> None:
        """The new rows appear with their ratios; an uninstalled server is n/a with the reason."""
        text = table(_results(self.summary))
        self.assertIn("n/a (beanstalkd not installed (apt-get install beanstalkd))", text)
        lines = {line[:47].rstrip(): line for line in text.splitlines()}
        two_nodes = lines["queue C=50 P=1   msgsvc (Redis store, 2 nodes)"].split()
        self.assertEqual(two_nodes[-3:], ["0.50", "-", "0.50"])  # vs line, vs ref (no reference row), vs mem
        batched = lines["queue C=50 P=1   bare Twisted, batched"].split()
        self.assertEqual(batched[-2:], ["1.20", "2.00"])  # vs Redis, vs line
        self.assertIn("1.71x the baseline's 700,000", text)
        self.assertIn("NO (at C=50 P=32)", text)
        self.assertEqual(
            self.summary["queue"]["C=50 P=1"]["beanstalkd"],
            {"n/a": "beanstalkd not installed (apt-get install beanstalkd)"},
        )

    def test_recorded_chat_baseline(self) -> None:
        """benchmarks/baselines holds today's chat figure for 100 members; another count or no file is no baseline."""
        self.assertGreater(chat_baseline(100, CHAT_BASELINE), 0)
        self.assertIsNone(chat_baseline(10, CHAT_BASELINE))  # a smoke run's 10 members: not comparable
        self.assertIsNone(chat_baseline(100, os.path.join(temp_dir(self), "missing.json")))


def _chat(deliveries: float, says: float, p99_us: float = 20_000.0) -> dict:
    """One chat sample as the load generator reports it over a 1-second window."""
    return {
        "event_rate": deliveries,
        "events": int(deliveries),
        "rate": says,
        "units": int(says),
        "p99_us": p99_us,
        "server_cpu": 0.95,
    }


class ChatStoreTests(unittest.SynchronousTestCase):
    """The chat fan-out rows of the Redis store, on one node and across two, next to the memory store's."""

    def summary(self, samples: dict[str, list[dict]], unavailable: dict[str, str] | None = None) -> dict:
        return summarize(samples, unavailable or {}, PLAN3, None, chat_base=700_000.0)

    def samples(self) -> dict[str, list[dict]]:
        return {
            "chat/msgsvc-memory": [_chat(800_000, 8_000), _chat(700_000, 7_000), _chat(900_000, 9_000)],
            "chat/msgsvc-redis": [_chat(400_000, 4_000), _chat(380_000, 3_800), _chat(420_000, 4_200)],
            "chat/msgsvc-redis-2nodes": [_chat(200_000, 4_000, 90_000.0)] * 3,
        }

    def test_medians_and_ratio_to_memory(self) -> None:
        """Each Redis-store row has its medians and its ratio to the memory store's deliveries/s."""
        stores = self.summary(self.samples())["chat_stores"]
        self.assertEqual(stores["msgsvc-redis"]["deliveries_per_s"], 400_000)
        self.assertEqual(stores["msgsvc-redis"]["vs_mem"], 0.5)
        self.assertEqual(stores["msgsvc-redis-2nodes"]["vs_mem"], 0.25)
        self.assertEqual(stores["msgsvc-redis-2nodes"]["p99_ms"], 90.0)
        self.assertEqual(stores["msgsvc-redis"]["reps"], 3)

    def test_deliveries_per_say(self) -> None:
        """Deliveries per SAY show a member missing another node's lines: 100 with none lost, 50 here."""
        summary = self.summary(self.samples())
        self.assertEqual(summary["chat"]["per_say"], 100.0)
        self.assertEqual(summary["chat_stores"]["msgsvc-redis-2nodes"]["per_say"], 50.0)

    def test_memory_row_unchanged(self) -> None:
        """The memory-store row keeps its baseline target."""
        summary = self.summary(self.samples())
        self.assertEqual(summary["chat"]["deliveries_per_s"], 800_000)
        target = next(t for t in summary["targets"] if t["target"].startswith("chat fan-out"))
        self.assertAlmostEqual(target["measured"], 800_000 / 700_000)

    def test_table(self) -> None:
        """The three rows follow each other; the Redis ones say their ratio to the memory store."""
        text = table(_results(self.summary(self.samples())))
        chat = [line for line in text.splitlines() if line.startswith("chat fan-out     ")]
        self.assertEqual(len(chat), 3)
        self.assertIn("msgsvc (memory store)", chat[0])
        self.assertIn("1.14x the baseline's 700,000", chat[0])
        self.assertIn("msgsvc (Redis store)  ", chat[1])
        self.assertIn("400,000 deliveries/s of * CHAT to 10 members (4,000 SAY/s, 100.0 per SAY", chat[1])
        self.assertTrue(chat[1].endswith("; 0.50x the memory store)"), chat[1])
        self.assertIn("msgsvc (Redis store, 2 nodes)", chat[2])
        self.assertIn("to 10 members on 2 nodes", chat[2])
        self.assertIn("50.0 per SAY", chat[2])
        self.assertTrue(chat[2].endswith("; 0.25x the memory store)"), chat[2])

    def test_without_redis(self) -> None:
        """Without redis-server the Redis rows are n/a with the reason; the memory row stays."""
        samples = {"chat/msgsvc-memory": self.samples()["chat/msgsvc-memory"]}
        why = "redis-server not installed (apt-get install redis-server)"
        unavailable = {"chat/msgsvc-redis": why, "chat/msgsvc-redis-2nodes": why}
        summary = self.summary(samples, unavailable)
        self.assertEqual(summary["chat_stores"]["msgsvc-redis-2nodes"], {"n/a": why})
        self.assertNotIn("msgsvc-redis", summary["queue"]["C=50 P=1"])  # a chat n/a is no queue n/a
        text = table(_results(summary))
        self.assertIn(f"chat fan-out     msgsvc (Redis store, 2 nodes)  n/a ({why})", text)

    def test_memory_row_missing(self) -> None:
        """A Redis row without a memory row of the same run has no ratio ("-")."""
        samples = {"chat/msgsvc-redis": self.samples()["chat/msgsvc-redis"]}
        summary = self.summary(samples)
        self.assertIsNone(summary["chat_stores"]["msgsvc-redis"]["vs_mem"])
        self.assertNotIn("chat", summary)
        self.assertIn("; -x the memory store)", table(_results(summary)))

    def test_no_chat_rows(self) -> None:
        """A run without chat rows has no chat_stores entry."""
        self.assertNotIn("chat_stores", self.summary({}))


def _bare_exchange(kind: type, chunks: list[bytes]) -> bytes:
    server = kind(bare.Queue())
    transport = StringTransport()
    transport.setTcpNoDelay = lambda enabled: None
    server.makeConnection(transport)
    for chunk in chunks:
        server.dataReceived(chunk)
    return transport.value()


class BareTwistedTests(unittest.SynchronousTestCase):
    """benchmarks.bare speaks the load generator's queue unit as msgsvc answers it."""

    STREAM = b"SEND hello world\nRECV\nRECV\r\nSEND {5}\nab\ncd\r\nRECV\nSEND {3}\nxyzRECV\nFOO\n"
    EXPECTED = (
        b"OK bare-twisted ready\r\nOK 1 queued 11 bytes\r\nDATA 11 1\r\nhello world\r\n"
        b"ERR empty Error - no messages in queue.\r\nOK 2 queued 5 bytes\r\nDATA 5 2\r\nab\ncd\r\n"
        b"OK 3 queued 3 bytes\r\nDATA 3 3\r\nxyz\r\nERR unknown-command only SEND and RECV\r\n"
    )

    def test_whole(self) -> None:
        """Inline and literal SENDs, RECV of each and of an empty queue, in one read."""
        for kind in (bare.LineServer, bare.BatchedServer):
            self.assertEqual(_bare_exchange(kind, [self.STREAM]), self.EXPECTED, kind)

    def test_byte_by_byte(self) -> None:
        """The same stream one byte at a time (literals and their CRLF split anywhere)."""
        chunks = [self.STREAM[i : i + 1] for i in range(len(self.STREAM))]
        for kind in (bare.LineServer, bare.BatchedServer):
            self.assertEqual(_bare_exchange(kind, chunks), self.EXPECTED, kind)

    def test_batched_writes_once_per_read(self) -> None:
        """The batched server answers a whole read with one write; the line server with one per reply."""
        writes = {}
        for kind in (bare.LineServer, bare.BatchedServer):
            server = kind(bare.Queue())
            transport = StringTransport()
            transport.setTcpNoDelay = lambda enabled: None
            calls = []
            transport.write = calls.append
            server.makeConnection(transport)
            server.dataReceived(b"SEND a\nRECV\nSEND b\nRECV\n")
            writes[kind] = len(calls) - 1  # the greeting
        self.assertEqual(writes, {bare.LineServer: 4, bare.BatchedServer: 1})


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
