"""The servers under test, each started as a subprocess on loopback and always killed afterwards."""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The checkout: msgsvc runs from here, importable without installing."""
FD_LIMIT = 20000
"""File descriptors wanted by the idle-connections row (10,000 connections plus headroom)."""
START_TIMEOUT = 30.0

_STARTED = re.compile(rb"Server started on 127\.0\.0\.1:([0-9]+)")


class ServerUnavailable(Exception):
    """The server cannot run here (not installed, or an option it does not accept); the text says why."""


def raise_fd_limit(wanted: int = FD_LIMIT) -> int:
    """Raise this process's open-file limit towards ``wanted`` (up to the hard limit); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def cpus() -> list[int]:
    """The CPUs this process may run on."""
    return sorted(os.sched_getaffinity(0))


def pinned(cpu: int | None) -> Callable[[], None]:
    """A preexec_fn: pin the child to ``cpu`` (when given) and raise its fd limit."""

    def setup() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        raise_fd_limit()

    return setup


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (for servers that cannot pick their own)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int:
    """The process's resident set size (VmRSS) in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds the process (all its threads) has used."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """A server subprocess: started by :meth:`start`, killed by :meth:`stop` (also on errors, via ``with``)."""

    name = "server"

    def __init__(self, cpu: int | None) -> None:
        self.cpu = cpu
        self.process: subprocess.Popen | None = None
        self.port = 0
        self._workdir = tempfile.mkdtemp(prefix="msgsvc-bench-")

    def command(self) -> Sequence[str]:
        """The command line that starts the server."""
        raise NotImplementedError

    def cwd(self) -> str:
        """Where the server runs."""
        return self._workdir

    def env(self) -> dict[str, str]:
        """The server's environment."""
        return dict(os.environ)

    def _wait_ready(self) -> int:
        """Read the server's output until it says its port; returns it."""
        raise NotImplementedError

    def start(self) -> Server:
        """Start the server and wait until it listens."""
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.cwd(),
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=pinned(self.cpu),
            start_new_session=True,  # Ctrl-C reaches the driver only; the driver stops us
        )
        try:
            self.port = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        # Keep reading its log: a server blocked on a full pipe would measure nothing.
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _drain(self) -> None:
        try:
            for _ in self.process.stdout:
                pass
        except (OSError, ValueError):
            pass  # closed by stop()

    def _read_until(self, pattern: re.Pattern[bytes]) -> re.Match[bytes]:
        """Read output lines until one matches; the server exiting first is ServerUnavailable."""
        deadline = time.monotonic() + START_TIMEOUT
        seen: list[bytes] = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                self.process.wait(timeout=5)
                output = b"".join(seen).decode(errors="replace").strip()
                last = output.splitlines()[-1] if output else "no output"
                raise ServerUnavailable(f"{self.name} exited with status {self.process.returncode}: {last}")
            seen.append(line)
            match = pattern.search(line)
            if match:
                return match
        raise ServerUnavailable(f"{self.name} did not start within {START_TIMEOUT:.0f} s")

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    @property
    def pids(self) -> list[int]:
        """Every process whose CPU time is the server's (one here; a cluster has more)."""
        return [self.pid]

    def loadgen_args(self) -> list[str]:
        """Options the load generator needs besides ``--port`` (a second port, for a cluster)."""
        return []

    def stop(self) -> None:
        """Kill the server (and anything it started) and forget its files."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=5)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class Msgsvc(Server):
    """``twistd -n msgsvc`` from this checkout."""

    def __init__(self, cpu: int | None, store: str = "memory", extra: Sequence[str] = ()) -> None:
        super().__init__(cpu)
        self.store = store
        self.extra = list(extra)
        self.name = f"msgsvc ({store.split(':')[0]} store)"

    def command(self) -> list[str]:
        store = self.store
        if store == "sqlite":
            store = "sqlite:" + os.path.join(self._workdir, "bench.sqlite")
        return [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "-n",
            "--pidfile=",
            "msgsvc",
            "--port",
            "0",
            "--max-clients",
            "0",
            "--idle-timeout",
            "3600",
            "--store",
            store,
            *self.extra,
        ]

    def cwd(self) -> str:
        return ROOT

    def env(self) -> dict[str, str]:
        path = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
        return dict(os.environ, PYTHONPATH=path)

    def _wait_ready(self) -> int:
        return int(self._read_until(_STARTED).group(1))


class Redis(Server):
    """``redis-server`` with its default configuration, on a free loopback port."""

    name = "redis"

    def __init__(self, cpu: int | None, extra: Sequence[str] = ()) -> None:
        super().__init__(cpu)
        self.extra = list(extra)
        self._port = free_port()

    @staticmethod
    def available() -> str | None:
        """The redis-server executable, or None when it is not installed."""
        return shutil.which("redis-server")

    def command(self) -> list[str]:
        executable = self.available()
        if executable is None:
            raise ServerUnavailable("redis-server is not installed (apt-get install redis-server)")
        # Only where it listens and where it may write (dump.rdb) differ from the defaults.
        return [executable, "--port", str(self._port), "--bind", "127.0.0.1", "--dir", self._workdir, *self.extra]

    def _wait_ready(self) -> int:
        self._read_until(re.compile(rb"Ready to accept connections"))
        return self._port


class Reference(Server):
    """The thread-per-connection reference (``benchmarks/baselines/threaded_queue_server.py``)."""

    name = "thread-per-connection"

    def command(self) -> list[str]:
        return [sys.executable, os.path.join(ROOT, "benchmarks", "baselines", "threaded_queue_server.py"), "0"]

    def _wait_ready(self) -> int:
        return int(self._read_until(_STARTED).group(1))


class CSender(Server):
    """The plain C sender (``loadgen sender``): the bulk rows' baseline."""

    name = "C sender"

    def __init__(self, cpu: int | None, loadgen: str, files: str) -> None:
        super().__init__(cpu)
        self.loadgen = loadgen
        self.files = files

    def command(self) -> list[str]:
        return [self.loadgen, "sender", "--port", "0", "--files", self.files, "--duration", "900"]

    def _wait_ready(self) -> int:
        return int(self._read_until(re.compile(rb"PORT ([0-9]+)")).group(1))


class Bare(Server):
    """A bare Twisted queue server (``python -m benchmarks.bare``): ``line`` or ``batched``."""

    def __init__(self, cpu: int | None, kind: str) -> None:
        super().__init__(cpu)
        self.kind = kind
        self.name = f"bare-twisted-{kind}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "benchmarks.bare", "--kind", self.kind, "--port", "0"]

    def cwd(self) -> str:
        return ROOT

    def env(self) -> dict[str, str]:
        path = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
        return dict(os.environ, PYTHONPATH=path)

    def _wait_ready(self) -> int:
        return int(self._read_until(_STARTED).group(1))


class Beanstalkd(Server):
    """``beanstalkd -l 127.0.0.1 -p PORT`` (no binlog: jobs in memory only, as Redis's default keeps them)."""

    name = "beanstalkd"

    def __init__(self, cpu: int | None) -> None:
        super().__init__(cpu)
        self._port = free_port()

    @staticmethod
    def available() -> str | None:
        """The beanstalkd executable, or None when it is not installed."""
        for candidate in ("/usr/sbin/beanstalkd", "/usr/bin/beanstalkd"):
            if os.access(candidate, os.X_OK):
                return candidate
        return shutil.which("beanstalkd")

    def command(self) -> list[str]:
        executable = self.available()
        if executable is None:
            raise ServerUnavailable("beanstalkd is not installed (apt-get install beanstalkd)")
        return [executable, "-l", "127.0.0.1", "-p", str(self._port)]

    def _wait_ready(self) -> int:
        # beanstalkd prints nothing when it is ready: poll its port.
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode(errors="replace").strip()
                raise ServerUnavailable(f"beanstalkd exited with status {self.process.returncode}: {output}")
            try:
                socket.create_connection(("127.0.0.1", self._port), timeout=1).close()
                return self._port
            except OSError:
                time.sleep(0.05)
        raise ServerUnavailable(f"beanstalkd did not listen within {START_TIMEOUT:.0f} s")


def redis_command(port: int, *args: str) -> bytes:
    """Send one command to the Redis on 127.0.0.1:``port``; returns its reply's first line."""
    request = f"*{len(args)}\r\n" + "".join(f"${len(arg.encode())}\r\n{arg}\r\n" for arg in args)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request.encode())
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply.strip()


class MsgsvcCluster:
    """``nodes`` msgsvc processes sharing ``--store redis://`` on a running :class:`Redis` (flushed first).

    Quacks like a :class:`Server` for the driver: ``port`` is the first node's, :meth:`loadgen_args`
    gives the load generator the second node's as ``--port2`` (it then alternates its connections
    between the two), and ``pids`` adds the redis-server to the nodes, so "srv CPU" is all of it.
    """

    def __init__(self, cpu: int | None, redis: Redis, nodes: int) -> None:
        self.redis = redis
        self.nodes = [Msgsvc(cpu, f"redis://127.0.0.1:{redis.port}/0") for _ in range(nodes)]
        self.name = "msgsvc (redis store)" if nodes == 1 else f"msgsvc (redis store, {nodes} nodes)"

    @property
    def port(self) -> int:
        return self.nodes[0].port

    @property
    def pid(self) -> int:
        return self.nodes[0].pid

    @property
    def pids(self) -> list[int]:
        return [node.pid for node in self.nodes] + [self.redis.pid]

    def loadgen_args(self) -> list[str]:
        return ["--port2", str(self.nodes[1].port)] if len(self.nodes) > 1 else []

    def start(self) -> MsgsvcCluster:
        """Empty the Redis, then start every node."""
        reply = redis_command(self.redis.port, "FLUSHALL")
        if reply != b"+OK":
            raise ServerUnavailable(f"redis FLUSHALL answered {reply!r}")
        try:
            for node in self.nodes:
                node.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the nodes (the Redis is the caller's)."""
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> MsgsvcCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
