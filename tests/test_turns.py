"""The end of a reactor turn: one pass for the grouped commit and the eager sends, in order."""

from __future__ import annotations

import os

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from msgsvc.store.database import Database
from msgsvc.turns import TurnEnd, turn_end
from tests.helpers import temp_dir


class TurnEndTests(SynchronousTestCase):
    """Work queued in a turn runs once, in order, after the turn's events; work it queues joins the pass."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.end = TurnEnd(self.clock)
        self.ran: list[str] = []

    def test_runs_in_order_at_the_end_of_the_turn(self) -> None:
        """Queued work waits for the turn's end and then runs in the order it was queued."""
        self.end.later(lambda: self.ran.append("a"))
        self.end.later(lambda: self.ran.append("b"))
        self.assertEqual(self.ran, [])
        self.clock.advance(0)
        self.assertEqual(self.ran, ["a", "b"])

    def test_one_timed_call_per_turn(self) -> None:
        """However much work a turn queues, it asks the reactor for one timed call."""
        for _ in range(5):
            self.end.later(lambda: None)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)

    def test_work_queued_by_work_joins_the_same_pass(self) -> None:
        """Work queued while the pass runs (a send a commit released) runs in that pass, not a turn later."""
        self.end.later(lambda: self.end.later(lambda: self.ran.append("released")))
        self.clock.advance(0)
        self.assertEqual(self.ran, ["released"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_next_turn_asks_again(self) -> None:
        """After a pass, work queued later gets a timed call of its own."""
        self.end.later(lambda: self.ran.append("first"))
        self.clock.advance(0)
        self.end.later(lambda: self.ran.append("second"))
        self.clock.advance(0)
        self.assertEqual(self.ran, ["first", "second"])

    def test_a_failure_is_logged_and_the_rest_runs(self) -> None:
        """One failing piece of work is logged; the work after it still runs."""

        def fail() -> None:
            raise RuntimeError("boom")

        self.end.later(fail)
        self.end.later(lambda: self.ran.append("after"))
        self.clock.advance(0)
        self.assertEqual(self.ran, ["after"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_one_turn_end_per_reactor(self) -> None:
        """turn_end gives each reactor one TurnEnd, shared by everyone who asks."""
        self.assertIs(turn_end(self.clock), turn_end(self.clock))
        self.assertIsNot(turn_end(self.clock), turn_end(Clock()))


class CommitInTheTurnsPassTests(SynchronousTestCase):
    """The SQLite commit runs in the turn end's pass, so what it releases is handled in that pass."""

    def test_work_released_by_the_commit_runs_in_the_same_pass(self) -> None:
        """A callback waiting for the commit queues turn-end work; it runs in the same clock step."""
        clock = Clock()
        database = Database(os.path.join(temp_dir(self), "turns.sqlite"), clock)
        self.addCleanup(database.close)
        sent: list[str] = []
        turn_end(clock).later(lambda: sent.append("earlier send"))
        database.write("INSERT INTO tweets (author, text) VALUES ('ann', 'hi')")
        database.when_committed(lambda error: turn_end(clock).later(lambda: sent.append("reply")))
        self.assertEqual(len(clock.getDelayedCalls()), 1)  # the commit shares the turn end's one timed call
        clock.advance(0)
        self.assertFalse(database.pending)
        self.assertEqual(sent, ["earlier send", "reply"])
        self.assertEqual(clock.getDelayedCalls(), [])
