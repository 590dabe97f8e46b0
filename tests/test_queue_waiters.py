"""Waiting receivers over a queue store that answers later: races between answers, departures and sends."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from msgsvc.domain.queues import QueueService
from msgsvc.domain.session import Session
from tests.helpers import FakeClient
from tests.queue_stores import LaterQueueStore


class LaterAnswersTests(SynchronousTestCase):
    """QueueService over a store whose answers the test releases one by one."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.store = LaterQueueStore()
        self.queues = QueueService(self.store, self.clock)
        self.ids = iter(range(1, 100))

    def session(self) -> Session:
        return Session(next(self.ids), FakeClient(), 0.0)

    def answer_all(self) -> None:
        while self.store.unanswered:
            self.store.answer_next()

    def test_waiter_gone_while_its_take_is_answered(self) -> None:
        """A message taken for a receiver that left meanwhile goes back to the head of its queue."""
        gone = self.session()
        waiting = self.queues.receive(gone, "q", 10)
        self.answer_all()
        self.queues.send("q", b"x")
        self.store.answer_next()  # the message is stored, and a take for the waiter starts
        self.assertEqual(self.store.unanswered, 1)
        gone.closed = 1.0
        self.queues.session_closed(gone)
        self.assertIsNone(self.successResultOf(waiting))
        self.answer_all()  # the take answers the message, which is given back
        taken = self.queues.receive(self.session(), "q", 0)
        self.answer_all()
        self.assertEqual(self.successResultOf(taken).payload, b"x")

    def test_receiver_gone_before_its_take_is_answered(self) -> None:
        """A message received or reserved for a client that left before the store answered is given back."""
        self.queues.send("q", b"a")
        self.answer_all()
        for reserve in (self.queues.receive, self.queues.reserve):
            gone = self.session()
            taken = reserve(gone, "q", 0)
            gone.closed = 1.0
            self.queues.session_closed(gone)
            self.answer_all()
            self.assertIsNone(self.successResultOf(taken))
        again = self.queues.reserve(self.session(), "q", 0)
        self.answer_all()
        message = self.successResultOf(again)
        self.assertEqual((message.payload, message.deliveries), (b"a", 1))

    def test_send_during_a_take_is_not_missed(self) -> None:
        """A message stored while a waiter's take is under way goes to the next waiter."""
        first = self.queues.receive(self.session(), "q", 10)
        second = self.queues.receive(self.session(), "q", 10)
        self.answer_all()
        self.queues.send("q", b"a")
        self.queues.send("q", b"b")
        self.store.answer_next()  # a is stored: a take for the first waiter starts
        self.store.answer_next()  # b is stored while that take is under way
        self.answer_all()
        self.assertEqual(self.successResultOf(first).payload, b"a")
        self.assertEqual(self.successResultOf(second).payload, b"b")

    def test_send_while_the_store_says_empty(self) -> None:
        """A receiver whose take found nothing still gets a message stored before it began to wait."""
        waiting = self.queues.receive(self.session(), "q", 10)
        self.queues.send("q", b"a")
        self.answer_all()
        self.assertEqual(self.successResultOf(waiting).payload, b"a")

    def test_failed_take_fails_the_waiter(self) -> None:
        """A store failure while taking for a waiter fails that waiter's answer; the line goes on."""
        failing, later = self.queues.receive(self.session(), "q", 10), self.queues.receive(self.session(), "q", 10)
        self.answer_all()

        def broken(queue: str, now: float) -> None:
            raise OSError("connection lost")

        self.store._store.dequeue, working = broken, self.store._store.dequeue
        self.queues.send("q", b"a")
        self.answer_all()
        self.failureResultOf(failing, OSError)
        self.store._store.dequeue = working
        self.queues.send("q", b"b")
        self.answer_all()
        self.assertEqual(self.successResultOf(later).payload, b"a")

    def test_reservation_answered_later(self) -> None:
        """RESERVE, NACK and ACK over later answers: the reservation is held once the store has answered."""
        me = self.session()
        self.queues.send("q", b"a")
        held = self.queues.reserve(me, "q", 0)
        self.answer_all()
        message = self.successResultOf(held)
        nacked = self.queues.nack(me, message.id, 0)
        self.assertNoResult(nacked)
        self.answer_all()
        again = self.queues.reserve(me, "q", 0)
        self.answer_all()
        self.assertEqual(self.successResultOf(again).deliveries, 2)
        acked = self.queues.acknowledge(me, message.id)
        self.answer_all()
        self.successResultOf(acked)
        stats = self.queues.stats("q")
        self.answer_all()
        figures = self.successResultOf(stats)
        self.assertEqual(
            (figures["ready"], figures["reserved"], figures["acked"], figures["redelivered"]), (0, 0, 1, 1)
        )
