"""Tests for msgsvc.dispatch.refusals: refused input logged under ERROR at a bounded rate."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from msgsvc.dispatch.refusals import RefusalLog


class RefusalLogTests(unittest.TestCase):
    """RefusalLog on a Clock."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.refusals = RefusalLog(self.clock, burst=2, period=1.0)

    def test_logged_under_error(self) -> None:
        """A refusal is one ERROR event naming the client and the error."""
        self.refusals.refused("tcp 127.0.0.1:5000", "bad-args", "missing <id>")
        [event] = self.events
        self.assertEqual(event["category"], "ERROR")
        self.assertEqual((event["who"], event["code"]), ("tcp 127.0.0.1:5000", "bad-args"))

    def test_burst_then_summary(self) -> None:
        """Past the burst, refusals are counted and summed up in one line the next period."""
        for _ in range(5):
            self.refusals.refused("udp 10.0.0.1:1", "unknown-command", "x")
        self.assertEqual(len(self.events), 2)
        self.clock.advance(1.0)
        self.refusals.refused("udp 10.0.0.1:1", "unknown-command", "x")
        self.assertEqual(self.events[2]["n"], 3)
        self.assertEqual(len(self.events), 4)
