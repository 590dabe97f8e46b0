"""Tests for the queue system at the broker level: FIFO, exactly once, waiting receivers, giving back."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from msgsvc.domain.errors import NoMessage
from msgsvc.domain.session import Session
from msgsvc.store.interfaces import IQueueStore, Message
from tests.queue_stores import QueueFixture


class QueueServiceBehaviour(QueueFixture):
    """QueueService on a Clock; every store must show this behaviour."""

    def send(self, payload: bytes, queue: str = "default") -> int:
        return self.now(self.queues.send(queue, payload))

    def receive(self, session: Session, queue: str = "default") -> Message | None:
        return self.now(self.queues.receive(session, queue, 0))

    def reserve(self, session: Session, queue: str = "default") -> Message | None:
        return self.now(self.queues.reserve(session, queue, 0))

    def waiting(self, session: Session, wait: float, queue: str = "default") -> Deferred[Message | None]:
        """A receive that waits: the store has answered, and nothing is there yet."""
        taken = self.queues.receive(session, queue, wait)
        self.clock.advance(0)
        self.assertNoResult(taken)
        return taken

    def test_store_provides_the_interface(self) -> None:
        """The queue store implements every operation of IQueueStore, with its signature."""
        self.assertTrue(verifyObject(IQueueStore, self.broker.stores.queues))

    def test_fifo(self) -> None:
        """Messages come out in the order they went in, each once."""
        ids = [self.send(b"one"), self.send(b"two"), self.send(b"three")]
        me = self.session()
        got = [self.receive(me) for _ in range(4)]
        self.assertEqual([m.payload for m in got[:3]], [b"one", b"two", b"three"])
        self.assertEqual([m.id for m in got[:3]], ids)
        self.assertIsNone(got[3])

    def test_queues_are_separate(self) -> None:
        """Each named queue has its own order."""
        self.send(b"a", "x")
        self.send(b"b", "y")
        self.assertEqual(self.receive(self.session(), "y").payload, b"b")
        self.assertEqual(self.now(self.queues.depths()), [("x", 1)])

    def test_empty_message(self) -> None:
        """A 0-byte message is a message."""
        self.send(b"")
        self.assertEqual(self.receive(self.session()).payload, b"")

    def test_waiting_receiver_gets_next_message(self) -> None:
        """A receiver waiting on an empty queue gets the next message sent."""
        waiting = self.waiting(self.session(), 5)
        self.clock.advance(1)
        self.send(b"late")
        self.assertEqual(self.successResultOf(waiting).payload, b"late")
        self.assertEqual(self.now(self.queues.depths()), [])

    def test_wait_expires_empty(self) -> None:
        """After the wait, a receiver gets nothing, and later messages stay queued."""
        waiting = self.waiting(self.session(), 2.5)
        self.clock.advance(2.4)
        self.assertNoResult(waiting)
        self.clock.advance(0.1)
        self.assertIsNone(self.successResultOf(waiting))
        self.send(b"kept")
        self.assertEqual(self.now(self.queues.depths()), [("default", 1)])

    def test_waiters_served_in_arrival_order(self) -> None:
        """Waiting receivers are served first come, first served, one message each."""
        first = self.waiting(self.session(), 10)
        second = self.waiting(self.session(), 10)
        self.send(b"1")
        self.assertEqual(self.successResultOf(first).payload, b"1")
        self.assertNoResult(second)
        self.send(b"2")
        self.assertEqual(self.successResultOf(second).payload, b"2")

    def test_departed_waiter_takes_nothing(self) -> None:
        """A receiver that disconnects while waiting takes nothing; the next waiter gets it."""
        gone = self.session()
        self.waiting(gone, 10)
        stays = self.waiting(self.session(), 10)
        self.broker.close_session(gone)
        self.send(b"msg")
        self.assertEqual(self.successResultOf(stays).payload, b"msg")

    def test_departed_waiter_leaves_message_queued(self) -> None:
        """With no other waiter, the message stays queued for a later receiver."""
        gone = self.session()
        self.waiting(gone, 10)
        self.broker.close_session(gone)
        self.send(b"msg")
        self.assertEqual(self.now(self.queues.depths()), [("default", 1)])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_many_receivers_each_message_once(self) -> None:
        """With many senders and waiting receivers, every message is delivered exactly once."""
        receivers = [self.waiting(self.session(), 60) for _ in range(50)]
        for i in range(80):
            self.queues.send("default", b"m%d" % i)
        self.clock.advance(0)
        got = [self.successResultOf(r).payload for r in receivers]
        me = self.session()
        got += [self.receive(me).payload for _ in range(30)]
        self.assertEqual(sorted(got), sorted(b"m%d" % i for i in range(80)))
        self.assertEqual(got[:50], [b"m%d" % i for i in range(50)])
        self.assertIsNone(self.receive(me))

    def test_given_back_message_is_first_again(self) -> None:
        """A received message given back is first in line again, with its id, and not counted as received."""
        self.send(b"a")
        self.send(b"b")
        me = self.session()
        taken = self.receive(me)
        self.queues.give_back("default", taken, reserved=False)
        self.clock.advance(0)
        again = self.receive(me)
        self.assertEqual((again.id, again.payload), (taken.id, b"a"))
        self.assertEqual(self.now(self.queues.stats("default"))["received"], 1)

    def test_given_back_reservation_ends_uncounted(self) -> None:
        """A reservation given back ends: the message is first again, its delivery and no redelivery counted."""
        self.send(b"a")
        self.send(b"b")
        me = self.session()
        held = self.reserve(me)
        self.queues.give_back("default", held, reserved=True)
        self.clock.advance(0)
        self.assertRaises(NoMessage, self.queues.acknowledge, me, held.id)
        again = self.reserve(me)
        self.assertEqual((again.id, again.deliveries), (held.id, 1))
        figures = self.now(self.queues.stats("default"))
        self.assertEqual((figures["received"], figures["redelivered"], figures["reserved"]), (1, 0, 1))

    def test_given_back_message_wakes_a_waiter(self) -> None:
        """A message given back goes to a receiver waiting on its queue, as a new message would."""
        self.send(b"a")
        taken = self.receive(self.session())
        waiting = self.waiting(self.session(), 10)
        self.queues.give_back("default", taken, reserved=False)
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(waiting).id, taken.id)

    def test_give_back_after_the_reservation_ended_does_nothing(self) -> None:
        """Giving back a reservation that ended already (its time to run is over) changes nothing."""
        self.send(b"a")
        first, second = self.session(), self.session()
        held = self.reserve(first)
        self.clock.advance(30)
        again = self.reserve(second)
        self.queues.give_back("default", held, reserved=True)
        self.clock.advance(0)
        self.assertIsNone(self.reserve(first))
        self.assertIsNone(self.now(self.queues.acknowledge(second, again.id)))


class MemoryQueueServiceTests(QueueServiceBehaviour, SynchronousTestCase):
    """The queue system over the memory store."""


class SqliteQueueServiceTests(QueueServiceBehaviour, SynchronousTestCase):
    """The queue system over the SQLite store."""

    kind = "sqlite"


class LaterQueueServiceTests(QueueServiceBehaviour, SynchronousTestCase):
    """The queue system over a store whose every answer comes later, in a Deferred."""

    kind = "later"


class RedisQueueServiceTests(QueueServiceBehaviour, SynchronousTestCase):
    """The queue system over the Redis store (on a real redis-server)."""

    kind = "redis"
