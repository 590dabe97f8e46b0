"""The benchmark driver stops its servers when it is told to stop."""

from __future__ import annotations

import os
import signal

from twisted.trial import unittest

from benchmarks.driver import exit_on_sigterm


class SigtermTests(unittest.SynchronousTestCase):
    """A SIGTERM unwinds the run, so its ``finally`` blocks stop the servers it started."""

    def test_sigterm_raises_system_exit(self) -> None:
        """After exit_on_sigterm, SIGTERM raises SystemExit(143) and the finally block runs."""
        self.addCleanup(signal.signal, signal.SIGTERM, signal.getsignal(signal.SIGTERM))
        exit_on_sigterm()
        stopped = []
        with self.assertRaises(SystemExit) as raised:
            try:
                os.kill(os.getpid(), signal.SIGTERM)  # the handler runs as soon as this returns
            finally:
                stopped.append(True)
        self.assertEqual((raised.exception.code, stopped), (143, [True]))
