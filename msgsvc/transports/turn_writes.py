# -*- test-case-name: tests.test_tcp_gather -*-
"""Events written once per reactor turn: a broadcast's line reaches each client in one write per turn."""

from __future__ import annotations

from typing import Protocol

from twisted.internet.interfaces import IReactorTime


class TurnEnd(Protocol):
    """A connection that gathered events during a turn."""

    def end_turn(self) -> None:
        """Write what was gathered (unless a read under way writes it at its end)."""


class TurnWrites:
    """The connections that gathered events during this reactor turn, each written once at its end.

    A chat line goes to every member: written at once, each would cost a
    ``send`` (or Twisted's write registration) per member per line; gathered,
    one per member per turn, however many lines the turn brought.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._due: list[TurnEnd] = []

    def add(self, connection: TurnEnd) -> None:
        """Write what ``connection`` gathers at the end of this turn."""
        if not self._due:
            self._clock.callLater(0, self._write_all)
        self._due.append(connection)

    def _write_all(self) -> None:
        due, self._due = self._due, []
        for connection in due:
            connection.end_turn()
