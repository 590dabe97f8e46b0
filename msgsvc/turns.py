# -*- test-case-name: tests.test_turns -*-
"""Work done once the reactor has handled a turn's events, before it polls again: one pass for all of it.

The SQLite store's grouped commit and the eager TCP transport's sends both
wait for the end of the turn. Each asking for its own ``callLater(0)`` would
cost a reply released by a commit a whole reactor iteration: a call made
while the reactor runs its timed calls is run only after the next poll. So
both queue their work on the reactor's one :class:`TurnEnd`, and work queued
while the pass runs (the sends of the replies a commit released) joins the
same pass, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from weakref import WeakKeyDictionary

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

log = Logger()


class TurnEnd:
    """Runs the work queued during a reactor turn, in order, once the turn's events are handled."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.pending: list[Callable[[], object]] = []

    def later(self, work: Callable[[], object]) -> None:
        """Run ``work()`` at the end of this turn (in this turn's pass if it is running)."""
        if not self.pending:
            self.clock.callLater(0, self.run)
        self.pending.append(work)

    def run(self) -> None:
        """Run the queued work and what it queues in turn; one failure is logged and the rest still runs."""
        pending = self.pending
        done = 0
        try:
            while done < len(pending):
                work = pending[done]
                done += 1
                try:
                    work()
                except Exception:
                    log.failure("work at the end of a reactor turn failed: {work!r}", work=work, category="ERROR")
        finally:
            self.pending = []


_turn_ends: WeakKeyDictionary[object, TurnEnd] = WeakKeyDictionary()
"""Each reactor's TurnEnd."""


def turn_end(clock: object) -> TurnEnd:
    """``clock``'s (a reactor's) TurnEnd, made when first asked for."""
    end = _turn_ends.get(clock)
    if end is None:
        end = _turn_ends[clock] = TurnEnd(IReactorTime(clock))
    return end
