"""Store answers: a value at once or a Deferred later; the queue system and its verbs take both."""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import SynchronousTestCase

from msgsvc.store.answers import deferred, then
from msgsvc.store.interfaces import Message
from tests.helpers import FakeClient, TcpHarness, make_broker
from tests.queue_stores import LaterQueueStore, StoreKinds


class AnswerTests(SynchronousTestCase):
    """The helpers that take either kind of answer."""

    def test_deferred_of_a_value_has_fired(self) -> None:
        """A value becomes an already-fired Deferred; a Deferred stays itself."""
        self.assertEqual(self.successResultOf(deferred(3)), 3)
        later: Deferred[int] = Deferred()
        self.assertIs(deferred(later), later)

    def test_then_runs_at_once_for_a_value(self) -> None:
        """then() on a value calls back at once and returns the callback's result, no Deferred."""
        self.assertEqual(then(3, lambda value, more: value + more, 4), 7)

    def test_then_waits_for_a_deferred(self) -> None:
        """then() on a Deferred calls back once it fires, and the Deferred carries the result."""
        later: Deferred[int] = Deferred()
        chained = then(later, lambda value, more: value + more, 4)
        self.assertNoResult(chained)
        later.callback(3)
        self.assertEqual(self.successResultOf(chained), 7)
        self.assertEqual(self.successResultOf(then(succeed(1), lambda value: value)), 1)


class AtOnceBehaviour(StoreKinds):
    """The memory and SQLite queue stores answer at once, so a message's path builds no Deferred."""

    def test_no_deferred_on_a_message_path(self) -> None:
        """SEND, RECV, RESERVE, ACK and NACK answer plain values when the store answers at once."""
        broker = self.make_broker()
        queues, me = broker.queues, broker.open_session(FakeClient())
        self.assertIsInstance(queues.send("q", b"a"), int)
        self.assertIsInstance(queues.send("q", b"b"), int)
        self.assertIsInstance(queues.receive(me, "q", 0), Message)
        held = queues.reserve(me, "q", 0)
        self.assertIsInstance(held, Message)
        self.assertIsNone(queues.nack(me, held.id, 0))
        self.assertIsNone(queues.acknowledge(me, queues.reserve(me, "q", 0).id))
        self.assertIsNone(queues.receive(me, "q", 0))
        self.assertIsInstance(queues.stats("q"), dict)


class MemoryAtOnceTests(AtOnceBehaviour, SynchronousTestCase):
    """The memory queue store answers at once."""


class SqliteAtOnceTests(AtOnceBehaviour, SynchronousTestCase):
    """The SQLite queue store answers at once."""

    kind = "sqlite"


class LaterStoreTests(StoreKinds, SynchronousTestCase):
    """Over a queue store that answers later, replies wait for its answers and stay byte-identical."""

    kind = "later"

    def setUp(self) -> None:
        self.broker = self.make_broker(max_clients=0)
        self.clock = self.broker.clock
        self.store: LaterQueueStore = self.broker.stores.queues
        self.client = TcpHarness(self.broker)
        self.client.output()

    def test_replies_wait_for_the_store(self) -> None:
        """Nothing is answered before the store has; then the replies are the memory store's, byte for byte."""
        at_once = TcpHarness(make_broker(max_clients=0))
        at_once.output()
        for commands in (b"SEND a\nSEND b\nRESERVE 5\nQSTAT\nRECV\n", b"NACK 1\nRESERVE\n", b"ACK 1\nQSTAT\nQUEUES\n"):
            self.client.send(commands)
            self.assertEqual(self.client.transport.value(), b"")
            at_once.send(commands)
            self.assertEqual(self.client.output(), at_once.output())
        self.assertGreater(self.store.answered, 10)

    def test_waiting_receiver_served_by_a_later_send(self) -> None:
        """A RECV waiting on an empty queue gets a message a later SEND stores."""
        other = TcpHarness(self.broker, 40001)
        other.output()
        self.client.send(b"RECV 10\n")
        self.clock.advance(1)
        other.send(b"SEND late\n")
        self.assertEqual(other.output(), b"OK 1 queued 4 bytes\r\n")
        self.assertEqual(self.client.output(), b"DATA 4 1\r\nlate\r\n")

    def test_store_failure_answers_internal(self) -> None:
        """A store that fails an operation makes the command answer ERR internal, logged; the next one works."""

        def broken(queue: str, now: float) -> None:
            raise OSError("connection lost")

        self.store._store.dequeue = broken
        self.assertEqual(self.client.command(b"RECV").code, "internal")
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertEqual(self.client.command(b"SEND still").text, "1 queued 5 bytes")
