"""Tests for the queue system at the broker level: FIFO, exactly once, waiting receivers."""

from twisted.trial.unittest import SynchronousTestCase

from msgsvc.store.interfaces import MessageTooBig
from tests.helpers import FakeClient, make_broker


class QueueServiceTests(SynchronousTestCase):
    """QueueService over the memory store, on a Clock."""

    def setUp(self):
        self.broker = make_broker(max_clients=0)
        self.clock = self.broker.clock
        self.queues = self.broker.queues

    def session(self):
        return self.broker.open_session(FakeClient())

    def send(self, payload: bytes, queue: str = "default") -> int:
        return self.queues.send(queue, payload)

    def test_fifo(self):
        """Messages come out in the order they went in, each once."""
        ids = [self.send(b"one"), self.send(b"two"), self.send(b"three")]
        me = self.session()
        got = [self.queues.receive(me, "default", 0, None) for _ in range(4)]
        self.assertEqual([m.payload for m in got[:3]], [b"one", b"two", b"three"])
        self.assertEqual([m.id for m in got[:3]], ids)
        self.assertIsNone(got[3])

    def test_queues_are_separate(self):
        """Each named queue has its own order."""
        self.send(b"a", "x")
        self.send(b"b", "y")
        me = self.session()
        self.assertEqual(self.queues.receive(me, "y", 0, None).payload, b"b")
        self.assertEqual(self.queues.depths(), [("x", 1)])

    def test_empty_message(self):
        """A 0-byte message is a message."""
        self.send(b"")
        message = self.queues.receive(self.session(), "default", 0, None)
        self.assertEqual(message.payload, b"")

    def test_waiting_receiver_gets_next_message(self):
        """A receiver waiting on an empty queue gets the next message sent."""
        waiting = self.queues.receive(self.session(), "default", 5, None)
        self.assertNoResult(waiting)
        self.clock.advance(1)
        self.send(b"late")
        self.assertEqual(self.successResultOf(waiting).payload, b"late")
        self.assertEqual(self.queues.depths(), [])

    def test_wait_expires_empty(self):
        """After the wait, a receiver gets nothing, and later messages stay queued."""
        waiting = self.queues.receive(self.session(), "default", 2.5, None)
        self.clock.advance(2.4)
        self.assertNoResult(waiting)
        self.clock.advance(0.1)
        self.assertIsNone(self.successResultOf(waiting))
        self.send(b"kept")
        self.assertEqual(self.queues.depths(), [("default", 1)])

    def test_waiters_served_in_arrival_order(self):
        """Waiting receivers are served first come, first served, one message each."""
        first = self.queues.receive(self.session(), "default", 10, None)
        second = self.queues.receive(self.session(), "default", 10, None)
        self.send(b"1")
        self.assertEqual(self.successResultOf(first).payload, b"1")
        self.assertNoResult(second)
        self.send(b"2")
        self.assertEqual(self.successResultOf(second).payload, b"2")

    def test_departed_waiter_takes_nothing(self):
        """A receiver that disconnects while waiting takes nothing; the next waiter gets it."""
        gone = self.session()
        self.queues.receive(gone, "default", 10, None)
        stays = self.queues.receive(self.session(), "default", 10, None)
        self.broker.close_session(gone)
        self.send(b"msg")
        self.assertEqual(self.successResultOf(stays).payload, b"msg")

    def test_departed_waiter_leaves_message_queued(self):
        """With no other waiter, the message stays queued for a later receiver."""
        gone = self.session()
        self.queues.receive(gone, "default", 10, None)
        self.broker.close_session(gone)
        self.send(b"msg")
        self.assertEqual(self.queues.depths(), [("default", 1)])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_too_big_for_receiver_stays(self):
        """A message larger than the receiver can take is refused and stays at the head."""
        self.send(b"x" * 100)
        me = self.session()
        self.assertRaises(MessageTooBig, self.queues.receive, me, "default", 0, 10)
        self.assertEqual(self.queues.receive(me, "default", 0, None).payload, b"x" * 100)

    def test_too_big_waiter_is_answered_and_next_waiter_served(self):
        """A waiter that cannot take the head message fails; a waiter that can gets it."""
        small = self.queues.receive(self.session(), "default", 10, 10)
        large = self.queues.receive(self.session(), "default", 10, None)
        self.send(b"x" * 100)
        self.failureResultOf(small, MessageTooBig)
        self.assertEqual(len(self.successResultOf(large).payload), 100)

    def test_many_receivers_each_message_once(self):
        """With many senders and waiting receivers, every message is delivered exactly once."""
        receivers = [self.queues.receive(self.session(), "default", 60, None) for _ in range(50)]
        for i in range(80):
            self.send(b"m%d" % i)
        got = [self.successResultOf(r).payload for r in receivers]
        me = self.session()
        got += [self.queues.receive(me, "default", 0, None).payload for _ in range(30)]
        self.assertEqual(sorted(got), sorted(b"m%d" % i for i in range(80)))
        self.assertEqual(got[:50], [b"m%d" % i for i in range(50)])
