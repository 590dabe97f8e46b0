"""``python -m benchmarks``: run the benchmark matrix, print one table, write JSON and a chart.

Every server runs on loopback as a subprocess pinned to one CPU, the C load
generator on the other. Each repetition runs every server once, so the ratios
compare servers measured in the same run; the table shows medians over the
repetitions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from benchmarks import amplification
from benchmarks.servers import (
    ROOT,
    Bare,
    Beanstalkd,
    CSender,
    Msgsvc,
    MsgsvcCluster,
    Redis,
    Reference,
    Server,
    ServerUnavailable,
    cpu_seconds,
    cpus,
    raise_fd_limit,
    rss_kib,
)

BUILD_DIR = os.path.join(ROOT, "benchmarks", ".build")
"""Where the load generator is compiled (gitignored)."""
SOURCE = os.path.join(ROOT, "benchmarks", "loadgen.c")
RESULTS_DIR = os.path.join(ROOT, "benchmarks", "results")
MIB = 1024 * 1024
ROWS = ("queue", "chat", "idle", "bulk", "udp")
"""The row kinds, all run by default; ``--only`` picks some."""


@dataclass(frozen=True)
class Plan:
    """How much to run: the full matrix or the few-second smoke run."""

    reps: int
    duration: float
    warmup: float
    queue_matrix: tuple[tuple[int, int], ...]
    chat_members: int
    idle_conns: int
    bulk_bytes: int
    bulk_transfers: int
    udp_bytes: int = 20_000_000
    """GEN size of the UDP rows."""
    udp_upload_bytes: int = 1 << 20
    """Size of the message the UDP upload rows SEND."""
    udp_uploads: int = 10
    """SENDs per UDP upload sample (one 1 MiB SEND over TCP takes a few milliseconds)."""
    udp_loss: float = 0.05
    """Probability that the lossy rows' relay drops a datagram, each direction."""


FULL = Plan(
    reps=3,
    duration=3.0,
    warmup=0.5,
    queue_matrix=((1, 1), (1, 32), (50, 1), (50, 32)),
    chat_members=100,
    idle_conns=10000,
    bulk_bytes=200_000_000,
    bulk_transfers=3,
    udp_bytes=20_000_000,
    udp_upload_bytes=1 << 20,
    udp_uploads=10,
)
SMOKE = Plan(
    reps=1,
    duration=0.25,
    warmup=0.05,
    queue_matrix=((1, 1), (4, 4)),
    chat_members=10,
    idle_conns=100,
    bulk_bytes=2_000_000,
    bulk_transfers=1,
    udp_bytes=200_000,
    udp_upload_bytes=200_000,
    udp_uploads=1,
)


def build_loadgen() -> str:
    """Compile loadgen.c with the system compiler unless the binary is up to date; returns its path."""
    binary = os.path.join(BUILD_DIR, "loadgen")
    if os.path.exists(binary) and os.path.getmtime(binary) >= os.path.getmtime(SOURCE):
        return binary
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        sys.exit("benchmarks: no C compiler found (apt-get install gcc)")
    os.makedirs(BUILD_DIR, exist_ok=True)
    subprocess.run([compiler, "-O2", "-Wall", "-o", binary + ".tmp", SOURCE], check=True)
    os.replace(binary + ".tmp", binary)
    return binary


class Bench:
    """Runs the load generator against servers and collects the samples."""

    def __init__(self, plan: Plan, loadgen: str) -> None:
        self.plan = plan
        self.loadgen = loadgen
        available = cpus()
        # Server on one CPU, load generator on another, when there are two.
        self.server_cpu = available[0] if len(available) > 1 else None
        self.client_cpu = available[1] if len(available) > 1 else None
        self.samples: dict[str, list[dict]] = {}
        self.unavailable: dict[str, str] = {}
        self.store_redis: Redis | None = None
        """The redis-server of the msgsvc-redis rows, while the queue rows run."""

    def add(self, key: str, sample: dict) -> None:
        """Keep one repetition's result."""
        self.samples.setdefault(key, []).append(sample)

    def loadgen_run(self, server: Server, mode: str, *args: str, timeout: float | None = None) -> dict:
        """Run the load generator once against ``server``; returns its JSON plus the server's CPU use."""
        command = [self.loadgen, mode, "--port", str(server.port), *server.loadgen_args(), *args]
        before_cpu, before_time = sum(map(cpu_seconds, server.pids)), time.monotonic()
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout or (self.plan.duration + self.plan.warmup + 60),
            preexec_fn=self._client_setup,
        )
        if result.returncode != 0:
            raise RuntimeError(f"loadgen {mode} failed against {server.name}: {result.stderr.strip()}")
        sample = json.loads(result.stdout.strip().splitlines()[-1])
        elapsed = time.monotonic() - before_time
        sample["server_cpu"] = (sum(map(cpu_seconds, server.pids)) - before_cpu) / elapsed
        return sample

    def _client_setup(self) -> None:
        if self.client_cpu is not None:
            os.sched_setaffinity(0, {self.client_cpu})
        raise_fd_limit()

    # -- queue -------------------------------------------------------------

    def queue_servers(self) -> list[tuple[str, callable]]:
        """(key, factory) for every server of the queue rows (the msgsvc-redis rows use ``self.store_redis``)."""
        cpu = self.server_cpu
        return [
            ("msgsvc-memory", lambda: Msgsvc(cpu, "memory")),
            ("msgsvc-sqlite", lambda: Msgsvc(cpu, "sqlite")),
            ("msgsvc-redis", lambda: MsgsvcCluster(cpu, self.store_redis, 1)),
            ("msgsvc-redis-2nodes", lambda: MsgsvcCluster(cpu, self.store_redis, 2)),
            ("bare-twisted-line", lambda: Bare(cpu, "line")),
            ("bare-twisted-batched", lambda: Bare(cpu, "batched")),
            ("redis", lambda: Redis(cpu)),
            ("beanstalkd", lambda: Beanstalkd(cpu)),
            ("reference", lambda: Reference(cpu)),
        ]

    def missing(self, name: str) -> str | None:
        """Why the queue row ``name`` cannot run here (its server is not installed), or None."""
        if name in ("redis", "msgsvc-redis", "msgsvc-redis-2nodes") and Redis.available() is None:
            return "redis-server not installed (apt-get install redis-server)"
        if name == "beanstalkd" and Beanstalkd.available() is None:
            return "beanstalkd not installed (apt-get install beanstalkd)"
        return None

    def _start(self, key: str, name: str, make: Callable[[], Server], label: str) -> Server | None:
        """The row's server, started; None (the row noted unavailable under ``key``) when it cannot run here.

        The msgsvc-redis rows share one redis-server (``self.store_redis``), on the server CPU with the nodes.
        """
        if key in self.unavailable:
            return None
        why = self.missing(name)
        try:
            if why is None:
                if name.startswith("msgsvc-redis") and self.store_redis is None:
                    self.store_redis = Redis(self.server_cpu).start()
                return make().start()
        except ServerUnavailable as error:
            why = str(error)
        self.unavailable[key] = why
        print(f"  {label}{name}: n/a ({why})", file=sys.stderr)
        return None

    def run_queue(self) -> None:
        """One repetition of the queue matrix on every server."""
        self.store_redis = None
        try:
            for name, make in self.queue_servers():
                server = self._start(name, name, make, "")
                if server is None:
                    continue
                try:
                    self._queue_points(name, server)
                finally:
                    server.stop()
        finally:
            if self.store_redis is not None:
                self.store_redis.stop()
                self.store_redis = None

    def _queue_points(self, name: str, server: Server) -> None:
        """Every point of the queue matrix against one running server."""
        plan = self.plan
        mode = {"redis": "redis", "beanstalkd": "beanstalk", "reference": "ref"}.get(name, "queue")
        for conns, pipeline in plan.queue_matrix:
            if name == "reference" and pipeline > 1:
                continue  # one message per connection: nothing to pipeline
            sample = self.loadgen_run(
                server,
                mode,
                *("--conns", str(conns), "--pipeline", str(pipeline)),
                *("--duration", str(plan.duration), "--warmup", str(plan.warmup), "--size", "41"),
            )
            self.add(f"queue/{conns}/{pipeline}/{name}", sample)
            print(f"  queue C={conns} P={pipeline} {name}: {sample['rate']:.0f} units/s", file=sys.stderr)

    # -- chat --------------------------------------------------------------

    def chat_servers(self) -> list[tuple[str, callable]]:
        """(key, factory) of every chat row: the memory store, then the Redis store on one and on two nodes
        (those use ``self.store_redis``; on two nodes the members alternate between the nodes' ports)."""
        cpu = self.server_cpu
        return [
            ("msgsvc-memory", lambda: Msgsvc(cpu, "memory")),
            ("msgsvc-redis", lambda: MsgsvcCluster(cpu, self.store_redis, 1)),
            ("msgsvc-redis-2nodes", lambda: MsgsvcCluster(cpu, self.store_redis, 2)),
        ]

    def run_chat(self) -> None:
        """One repetition of the chat fan-out: every member says lines, the others receive them."""
        plan = self.plan
        self.store_redis = None
        try:
            for name, make in self.chat_servers():
                key = f"chat/{name}"
                server = self._start(key, name, make, "chat ")
                if server is None:
                    continue
                try:
                    sample = self.loadgen_run(
                        server,
                        "chat",
                        *("--conns", str(plan.chat_members), "--pipeline", "1", "--size", "41"),
                        *("--duration", str(plan.duration), "--warmup", str(plan.warmup)),
                    )
                finally:
                    server.stop()
                self.add(key, sample)
                print(
                    f"  chat {plan.chat_members} members {name}: {sample['event_rate']:.0f} deliveries/s "
                    f"({sample['events'] / max(1, sample['units']):.2f} per SAY)",
                    file=sys.stderr,
                )
        finally:
            if self.store_redis is not None:
                self.store_redis.stop()
                self.store_redis = None

    # -- idle connections ----------------------------------------------------

    def run_idle(self) -> None:
        """Server RSS per connection with many idle connections open."""
        servers = [("msgsvc-memory", lambda: Msgsvc(self.server_cpu, "memory"))]
        if Redis.available():
            # maxclients defaults to 10000, which the row reaches exactly; give it headroom.
            servers.append(("redis", lambda: Redis(self.server_cpu, ["--maxclients", str(self.plan.idle_conns + 100)])))
        for name, make in servers:
            with make() as server:
                self.add(f"idle/{name}", self._idle_sample(server, ping=name == "redis"))
            print(f"  idle {name}: {self.samples[f'idle/{name}'][-1]['bytes_per_conn']:.0f} B/conn", file=sys.stderr)

    def _idle_sample(self, server: Server, ping: bool) -> dict:
        conns = self.plan.idle_conns
        time.sleep(0.2)
        before = rss_kib(server.pid)
        client = subprocess.Popen(
            [self.loadgen, "idle", "--port", str(server.port), "--conns", str(conns), "--duration", "120"]
            + ["--ping", "1"] * ping,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=self._client_setup,
        )
        try:
            started = time.monotonic()
            ready = client.stdout.readline()
            if not ready.startswith("READY"):
                raise RuntimeError(f"loadgen idle did not open its connections: {ready!r}")
            opened = time.monotonic() - started
            time.sleep(0.5)
            after = rss_kib(server.pid)
            client.stdin.close()
            client.wait(timeout=30)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
        return {
            "conns": conns,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "bytes_per_conn": (after - before) * 1024 / conns,
            "open_seconds": opened,
        }

    # -- bulk --------------------------------------------------------------

    def run_bulk(self, files: str) -> None:
        """GEN and GET of a large payload to one client, msgsvc against the plain C sender."""
        plan = self.plan
        servers = [
            ("msgsvc-memory", lambda: Msgsvc(self.server_cpu, "memory", ["--files", files, "--max-gen", "1000000000"])),
            ("c-sender", lambda: CSender(self.server_cpu, self.loadgen, files)),
        ]
        for name, make in servers:
            with make() as server:
                for kind, cmd in (("gen", f"GEN {plan.bulk_bytes}"), ("get", "GET bulk.bin")):
                    sample = self.loadgen_run(
                        server, "bulk", "--cmd", cmd, "--count", str(plan.bulk_transfers), "--duration", "120"
                    )
                    rates = [t["bytes"] / t["seconds"] / MIB for t in sample["transfers"]]
                    sample["mib_per_s"] = statistics.median(rates)
                    self.add(f"bulk/{kind}/{name}", sample)
                    print(f"  bulk {kind} {name}: {sample['mib_per_s']:.0f} MiB/s", file=sys.stderr)

    # -- UDP ---------------------------------------------------------------

    def udp_cases(self) -> list[tuple[str, str, float]]:
        """(op, transport, loss) of every UDP row: GEN down and SEND up, UDP clean and lossy, TCP for the ratio."""
        loss = self.plan.udp_loss
        return [
            (op, transport, rate)
            for op in ("gen", "send")
            for transport, rate in (("udp", 0.0), ("udp", loss), ("tcp", 0.0))
        ]

    def run_udp(self) -> None:
        """One repetition of the UDP rows: the client library in a benchmarks.udp subprocess per row."""
        plan = self.plan
        extra = ["--max-gen", str(max(plan.udp_bytes, 123456789))]
        extra += ["--max-message", str(max(plan.udp_upload_bytes, 1 << 20) * 2)]
        with Msgsvc(self.server_cpu, "memory", extra) as server:
            for op, transport, loss in self.udp_cases():
                size = plan.udp_bytes if op == "gen" else plan.udp_upload_bytes
                count = 1 if op == "gen" else plan.udp_uploads
                sample = self.udp_run(server, op, transport, loss, size, count)
                key = f"udp/{op}/{transport}/{loss:g}"
                self.add(key, sample)
                print(f"  {key}: {sample['mib_per_s']:.1f} MiB/s", file=sys.stderr)

    def udp_run(self, server: Server, op: str, transport: str, loss: float, size: int, count: int) -> dict:
        """Run ``python -m benchmarks.udp`` against ``server``: ``count`` transfers of ``size`` bytes, timed as one."""
        command = [sys.executable, "-m", "benchmarks.udp", "--port", str(server.port), "--op", op]
        command += ["--bytes", str(size), "--count", str(count), "--transport", transport]
        command += ["--loss", str(loss), "--seed", str(len(self.samples.get(f"udp/{op}/{transport}/{loss:g}", [])))]
        command += ["--server-pid", str(server.pid)]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
            env=checkout_env(),
            preexec_fn=self._client_setup,
        )
        if result.returncode != 0:
            raise RuntimeError(f"benchmarks.udp {op} {transport} loss {loss} failed: {result.stderr.strip()}")
        sample = json.loads(result.stdout.strip().splitlines()[-1])
        sample.update(
            op=op,
            transport=transport,
            loss=loss,
            size=size,
            count=count,
            mib_per_s=sample["bytes"] / sample["seconds"] / MIB,
            client_cpu=sample["client_cpu_seconds"] / sample["seconds"],
        )
        return sample


def checkout_env() -> dict[str, str]:
    """The environment of a Python subprocess that imports msgsvc and benchmarks from this checkout."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))


def make_bulk_file(directory: str, size: int) -> None:
    """Write the GET row's file: ``size`` bytes of a repeating pattern."""
    block = bytes(range(256)) * 4096
    with open(os.path.join(directory, "bulk.bin"), "wb") as out:
        left = size
        while left:
            part = block[: min(left, len(block))]
            out.write(part)
            left -= len(part)


def machine() -> dict:
    """What the numbers were measured on."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    redis = None
    if Redis.available():
        redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
    beanstalkd = None
    if Beanstalkd.available():
        beanstalkd = subprocess.run([Beanstalkd.available(), "-v"], capture_output=True, text=True).stdout.strip()
    import twisted

    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "twisted": twisted.__version__,
        "redis": redis,
        "beanstalkd": beanstalkd,
    }


def exit_on_sigterm() -> None:
    """A SIGTERM ends the run as Ctrl-C does, through the ``finally`` blocks that stop every server started."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few-second run that checks everything works")
    parser.add_argument("--reps", type=int, help="repetitions (medians are reported)")
    parser.add_argument("--duration", type=float, help="measured seconds per load-generator run")
    parser.add_argument("--out", help="directory for results.json and results.png (default benchmarks/results)")
    parser.add_argument("--only", action="append", choices=ROWS, help="run only these rows (repeatable)")
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else FULL
    if args.reps:
        plan = Plan(**{**plan.__dict__, "reps": args.reps})
    if args.duration:
        plan = Plan(**{**plan.__dict__, "duration": args.duration})
    out = args.out or (tempfile.mkdtemp(prefix="msgsvc-bench-smoke-") if args.smoke else RESULTS_DIR)
    rows = args.only or list(ROWS)

    from benchmarks.report import chart, chat_baseline, summarize, table

    raise_fd_limit()
    exit_on_sigterm()
    loadgen = build_loadgen() if set(rows) - {"udp"} else ""  # the UDP rows' client is Python
    bench = Bench(plan, loadgen)
    if Redis.available() is None:
        print("redis-server not found: the Redis rows are skipped (apt-get install redis-server)", file=sys.stderr)
    if Beanstalkd.available() is None and "queue" in rows:
        print("beanstalkd not found: the beanstalkd row is skipped (apt-get install beanstalkd)", file=sys.stderr)
    started = time.monotonic()
    files = tempfile.mkdtemp(prefix="msgsvc-bench-files-")
    try:
        if "bulk" in rows:
            make_bulk_file(files, plan.bulk_bytes)
        for rep in range(plan.reps):
            print(f"repetition {rep + 1} of {plan.reps}", file=sys.stderr)
            if "queue" in rows:
                bench.run_queue()
            if "chat" in rows:
                bench.run_chat()
            if "bulk" in rows:
                bench.run_bulk(files)
            if "udp" in rows:
                bench.run_udp()
        if "idle" in rows:
            for _ in range(plan.reps if not args.smoke else 1):
                bench.run_idle()
    except KeyboardInterrupt:
        print("interrupted: every server was stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(files, ignore_errors=True)
    amplified = None
    if "udp" in rows:
        amplified = amplification.factors()
        print(f"  amplification: largest factor {max(amplified.values()):.2f}", file=sys.stderr)
    elapsed = time.monotonic() - started
    summary = summarize(bench.samples, bench.unavailable, plan, amplified, chat_baseline(plan.chat_members))
    results = {
        "machine": machine(),
        "plan": plan.__dict__,
        "elapsed_seconds": round(elapsed, 1),
        "summary": summary,
        "samples": bench.samples,
        "unavailable": bench.unavailable,
    }
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as output:
        json.dump(results, output, indent=1)
    print(table(results))
    print(f"\nwrote {os.path.join(out, 'results.json')}", end="")
    png = chart(results, os.path.join(out, "results.png"))
    print(f" and {png}" if png else " (no chart: pip install matplotlib, or '.[bench]')")
    print(f"total {elapsed:.0f} s")
    return 0
