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
