# -*- test-case-name: tests.test_refusals -*-
"""Refused input in the event log: one ERROR line per refusal, at a bounded rate.

A client that breaks the rules (an unknown verb, bad arguments, an over-long
line, a literal too big) is logged under ``ERROR``, as the event log promises.
A hostile client can send thousands of bad commands a second, so at most
``burst`` lines are written per ``period``; the rest are counted and reported
in one summary line when the next period begins.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

log = Logger()

BURST = 20
"""Refusals logged per PERIOD before the rest are only counted."""
PERIOD = 1.0


class RefusalLog:
    """Logs refused requests under ERROR, at most ``burst`` per ``period`` seconds."""

    def __init__(self, clock: IReactorTime | None = None, burst: int = BURST, period: float = PERIOD) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        self._clock = clock
        self._burst = burst
        self._period = period
        self._started = -period
        self._logged = 0
        self._suppressed = 0

    def refused(self, who: str, code: str, text: str) -> None:
        """``who`` (e.g. ``tcp 127.0.0.1:5000``) got ``ERR code text``."""
        now = self._clock.seconds()
        if now - self._started >= self._period:
            if self._suppressed:
                log.warn("{n} more refused requests not logged", n=self._suppressed, category="ERROR")
            self._started = now
            self._logged = 0
            self._suppressed = 0
        if self._logged >= self._burst:
            self._suppressed += 1
            return
        self._logged += 1
        log.info("refused {who}: {code} {text}", who=who, code=code, text=text, category="ERROR")
