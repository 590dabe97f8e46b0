"""Real starts of ``twistd msgsvc`` that fail or are refused, as a daemon and in the foreground (-n).

Each twistd runs in a subprocess in a temporary directory. A daemon's parent
exits once the daemon has reported its start (or why it failed), so waiting on
that parent with a timeout is enough; any daemon left is killed at cleanup.
"""

from __future__ import annotations

import gc
import os
import re
import select
import signal
import socket
import subprocess
import sys

from twisted.trial.unittest import SkipTest, TestCase

from msgsvc.startup import COLLECTOR_THRESHOLDS, tune_collector
from tests.helpers import CHECKOUT_ENV, temp_dir

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
START_TIMEOUT = 15
"""Seconds a start, good or bad, may take before the test fails."""
STORE = "sqlite:msgsvc.sqlite"
"""Relative to the run's directory: twistd hands a failed daemon's reason to its parent in 100 bytes at most."""


class Twistd:
    """Runs ``twistd msgsvc`` in one directory; kills the daemons it started when the test ends."""

    def __init__(self, testcase: TestCase) -> None:
        if not os.path.exists(TWISTD):
            raise SkipTest(f"no twistd script beside {sys.executable}")
        self.testcase = testcase
        self.directory = temp_dir(testcase)

    def path(self, name: str) -> str:
        """A file in the run's directory."""
        return os.path.join(self.directory, name)

    def run(self, name: str, *options: str, daemon: bool = True) -> subprocess.CompletedProcess[str]:
        """Start twistd with ``name.pid`` and ``name.log``; return once it (a daemon's parent) has exited."""
        pidfile = self.path(f"{name}.pid")
        flags = [f"--pidfile={pidfile}", f"--logfile={self.path(name + '.log')}"] if daemon else ["-n"]
        if not daemon:
            flags.append(f"--pidfile={pidfile}")
        args = [TWISTD, *flags, "msgsvc", "--store", STORE, *options]
        try:
            result = subprocess.run(
                args, cwd=self.directory, env=CHECKOUT_ENV, capture_output=True, text=True, timeout=START_TIMEOUT
            )
        except subprocess.TimeoutExpired:
            self.kill_at_cleanup(pidfile)
            raise
        if result.returncode == 0:  # a daemon now serves (a failed one ends by itself: see pidfile_left)
            self.kill_at_cleanup(pidfile)
        return result

    def kill_at_cleanup(self, pidfile: str) -> None:
        """Kill the process a pidfile names (if any) when the test ends."""
        try:
            with open(pidfile) as file:
                pid = int(file.read())
        except (OSError, ValueError):
            return
        self.testcase.addCleanup(_kill, pid)

    def pidfile_left(self, name: str) -> bool:
        """Whether ``name.pid`` stays once the process it names has ended.

        A failed daemon removes its pidfile just after it has told its parent,
        so this first waits for that process to end (a pidfd, not a sleep).
        """
        pidfile = self.path(f"{name}.pid")
        try:
            with open(pidfile) as file:
                pid = int(file.read())
        except FileNotFoundError:
            return False
        if not hasattr(os, "pidfd_open"):
            raise SkipTest("waiting for a daemon to end needs os.pidfd_open (Linux)")
        try:
            process = os.pidfd_open(pid)
        except ProcessLookupError:
            return os.path.exists(pidfile)
        try:
            ended, _, _ = select.select([process], [], [], START_TIMEOUT)
        finally:
            os.close(process)
        self.testcase.assertTrue(ended, f"process {pid} of {pidfile} still runs")
        return os.path.exists(pidfile)

    def log(self, name: str) -> str:
        """What the daemon ``name`` logged."""
        with open(self.path(f"{name}.log")) as file:
            return file.read()

    def start_daemon(self, name: str) -> int:
        """Start a daemon on a free port; return that port."""
        started = self.run(name, "--port", "0")
        self.testcase.assertEqual(started.returncode, 0, started.stderr)
        found = re.search(r"Server started on 127\.0\.0\.1:(\d+) \(TCP and UDP\)", self.log(name))
        self.testcase.assertIsNotNone(found, self.log(name))
        return int(found.group(1))


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def ping(port: int) -> bytes:
    """Send PING over TCP; the reply line that answers it (after any greeting)."""
    with socket.create_connection(("127.0.0.1", port), timeout=START_TIMEOUT) as connection:
        connection.sendall(b"PING\r\n")
        lines = connection.makefile("rb")
        line = lines.readline()
        if not line.startswith((b"OK PONG", b"ERR")):
            line = lines.readline()
        return line


def taken_port(testcase: TestCase) -> int:
    """A loopback TCP port this test holds for the length of the test."""
    holder = socket.socket()
    testcase.addCleanup(holder.close)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder.getsockname()[1]


class RefusedStoreTests(TestCase):
    """A store already served by a daemon is refused to any second msgsvc."""

    def assertRefused(self, run: Twistd, refused: subprocess.CompletedProcess[str], name: str) -> None:
        """The start failed with the reason on one line of stderr, no traceback, no pidfile left."""
        reason = "msgsvc.sqlite is in use by another msgsvc process"
        self.assertNotEqual(refused.returncode, 0)
        self.assertEqual(len([line for line in refused.stderr.splitlines() if reason in line]), 1, refused.stderr)
        self.assertNotIn("Traceback", refused.stderr)
        self.assertFalse(run.pidfile_left(name))

    def test_second_daemon_refused(self) -> None:
        """A second daemon on the store of a running one exits non-zero with the reason; the first still serves."""
        run = Twistd(self)
        port = run.start_daemon("first")
        second = run.run("second", "--port", "0")
        self.assertRefused(run, second, "second")
        self.assertEqual(second.stderr, "msgsvc: msgsvc.sqlite is in use by another msgsvc process\n")
        self.assertTrue(os.path.exists(run.path("first.pid")))
        self.assertEqual(ping(port), b"OK PONG\r\n")

    def test_foreground_refused_by_daemon(self) -> None:
        """twistd -n on the store of a running daemon prints exactly one line and exits 1."""
        run = Twistd(self)
        port = run.start_daemon("first")
        second = run.run("second", "--port", "0", daemon=False)
        self.assertRefused(run, second, "second")
        self.assertEqual(
            (second.returncode, second.stderr), (1, "msgsvc: msgsvc.sqlite is in use by another msgsvc process\n")
        )
        self.assertEqual(ping(port), b"OK PONG\r\n")


class TakenPortTests(TestCase):
    """A port that is already taken ends the start at once, daemon or not."""

    def test_daemon(self) -> None:
        """A daemon on a taken port exits non-zero within seconds, the reason on one line, no pidfile left."""
        port = taken_port(self)
        run = Twistd(self)
        failed = run.run("daemon", "--port", str(port))
        reason = f"cannot listen on 127.0.0.1:{port}: Address already in use"
        self.assertEqual((failed.returncode, failed.stderr), (1, f"msgsvc: {reason}\n"))
        self.assertFalse(run.pidfile_left("daemon"))

    def test_foreground(self) -> None:
        """twistd -n on a taken port prints exactly one line on stderr, exits 1 and leaves no pidfile."""
        port = taken_port(self)
        run = Twistd(self)
        failed = run.run("foreground", "--port", str(port), daemon=False)
        reason = f"cannot listen on 127.0.0.1:{port}: Address already in use"
        self.assertEqual((failed.returncode, failed.stderr), (1, f"msgsvc: {reason}\n"))
        self.assertFalse(run.pidfile_left("foreground"))

    def test_unusable_store(self) -> None:
        """A daemon whose store is not a database exits non-zero with the reason, leaving the file as it was."""
        run = Twistd(self)
        with open(run.path("msgsvc.sqlite"), "wb") as file:
            file.write(b"not a database" * 100)
        failed = run.run("daemon", "--port", "0")
        self.assertNotEqual(failed.returncode, 0)
        self.assertIn("msgsvc.sqlite is not a usable msgsvc database", failed.stderr)
        self.assertNotIn("Traceback", failed.stderr)
        self.assertFalse(run.pidfile_left("daemon"))
        with open(run.path("msgsvc.sqlite"), "rb") as file:
            self.assertEqual(file.read(), b"not a database" * 100)


class CollectorTests(TestCase):
    """The garbage collector is tuned for a serving process."""

    def test_tune_collector(self) -> None:
        """tune_collector freezes what exists and raises the collection thresholds."""
        self.addCleanup(gc.set_threshold, *gc.get_threshold())
        self.addCleanup(gc.unfreeze)
        tune_collector()
        self.assertEqual(gc.get_threshold(), COLLECTOR_THRESHOLDS)
        self.assertGreater(gc.get_freeze_count(), 0)
