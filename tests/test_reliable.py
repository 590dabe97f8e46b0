"""At-least-once delivery (RESERVE/ACK/NACK/QSTAT, TTR, dead letters) over TCP and UDP, on every kind of store."""

from __future__ import annotations

import sqlite3

from twisted.trial.unittest import SynchronousTestCase

from msgsvc.client.replies import Reply
from tests.helpers import TcpHarness, UdpHarness
from tests.queue_stores import StoreKinds

ALICE = ("127.0.0.1", 52001)
BOB = ("127.0.0.1", 52002)


class ReliableDeliveryBehaviour(StoreKinds):
    """The behaviour every store must show; subclasses choose the store."""

    def setUp(self) -> None:
        self.broker = self.make_broker(max_clients=0, ttr=30, max_deliveries=3)
        self.clock = self.broker.clock
        self.ports = iter(range(43000, 44000))

    def client(self) -> TcpHarness:
        harness = TcpHarness(self.broker, next(self.ports))
        harness.output()
        return harness

    def ask(self, harness: TcpHarness, line: bytes) -> Reply:
        """Send a command, let the store commit, return its one reply."""
        harness.send(line + b"\n")
        self.clock.advance(0)
        (reply,) = harness.replies()
        return reply

    def qstat(self, harness: TcpHarness, queue: bytes = b"") -> dict[str, int]:
        payload = self.ask(harness, b"QSTAT" + (b" @" + queue if queue else b"")).payload.decode()
        return {key: int(value) for key, value in (line.split() for line in payload.splitlines())}

    def test_reserve_then_ack(self) -> None:
        """RESERVE hands out the oldest message but keeps it hidden; ACK deletes it."""
        c = self.client()
        self.ask(c, b"SEND first")
        self.ask(c, b"SEND second")
        reserved = self.ask(c, b"RESERVE")
        self.assertEqual((reserved.kind, reserved.text, reserved.payload), ("DATA", "1", b"first"))
        self.assertEqual(self.ask(c, b"RECV").payload, b"second")
        self.assertEqual(self.ask(c, b"RECV").code, "empty")
        self.assertEqual(self.ask(c, b"ACK 1").kind, "OK")
        self.assertEqual(self.qstat(c)["acked"], 1)
        self.assertEqual(self.ask(c, b"ACK 1").code, "no-msg")

    def test_qstat(self) -> None:
        """QSTAT reports ready, reserved, sent, received, acked, redelivered, dead and the head's age."""
        c = self.client()
        for n in range(3):
            self.ask(c, b"SEND m%d" % n)
        self.clock.advance(2.5)
        self.ask(c, b"RESERVE")
        self.ask(c, b"RECV")
        figures = self.qstat(c)
        self.assertEqual(
            list(figures),
            ["ready", "reserved", "sent", "received", "acked", "redelivered", "dead", "oldest-age-ms", "delayed"],
        )
        self.assertEqual(
            figures,
            {
                "ready": 1,
                "reserved": 1,
                "sent": 3,
                "received": 2,
                "acked": 0,
                "redelivered": 0,
                "dead": 0,
                "oldest-age-ms": 2500,
                "delayed": 0,
            },
        )

    def test_ack_needs_the_holder(self) -> None:
        """Only the client holding a reservation may ACK or NACK it; others get ERR no-msg."""
        holder, other = self.client(), self.client()
        self.ask(holder, b"SEND x")
        self.ask(holder, b"RESERVE")
        self.assertEqual(self.ask(other, b"ACK 1").code, "no-msg")
        self.assertEqual(self.ask(other, b"NACK 1").code, "no-msg")
        self.assertEqual(self.ask(other, b"ACK 999").code, "no-msg")
        self.assertEqual(self.ask(other, b"ACK x").code, "bad-args")
        self.assertEqual(self.ask(holder, b"ACK 1").kind, "OK")

    def test_nack_puts_back_at_head(self) -> None:
        """NACK makes the message ready again, first in line, counted as redelivered."""
        c = self.client()
        self.ask(c, b"SEND a")
        self.ask(c, b"SEND b")
        self.ask(c, b"RESERVE")
        self.ask(c, b"NACK 1")
        again = self.ask(c, b"RESERVE")
        self.assertEqual((again.text, again.payload), ("1", b"a"))
        self.assertEqual(self.qstat(c)["redelivered"], 1)

    def test_nack_with_delay(self) -> None:
        """NACK with a delay hides the message until the delay is over, then it is first in line."""
        c = self.client()
        self.ask(c, b"SEND a")
        self.ask(c, b"SEND b")
        self.ask(c, b"RESERVE")
        self.ask(c, b"NACK 1 5")
        self.assertEqual(self.qstat(c)["delayed"], 1)
        self.assertEqual(self.ask(c, b"RESERVE").payload, b"b")
        self.assertEqual(self.ask(c, b"RESERVE").code, "empty")
        self.clock.advance(5)
        self.assertEqual(self.ask(c, b"RECV").payload, b"a")

    def test_delayed_message_wakes_waiter(self) -> None:
        """A receiver waiting when a delayed message becomes ready gets it."""
        c, waiting = self.client(), self.client()
        self.ask(c, b"SEND a")
        self.ask(c, b"RESERVE")
        self.ask(c, b"NACK 1 2")
        waiting.send(b"RECV 10\n")
        self.clock.advance(2)
        self.clock.advance(0)
        self.assertEqual(waiting.replies()[0].payload, b"a")

    def test_ttr_expiry(self) -> None:
        """A reservation not acknowledged within --ttr ends; the message is ready at the head again."""
        c, other = self.client(), self.client()
        self.ask(c, b"SEND a")
        self.ask(c, b"SEND b")
        self.ask(c, b"RESERVE")
        self.clock.advance(29)
        self.assertEqual(self.ask(other, b"RESERVE").payload, b"b")
        self.clock.advance(1)
        self.assertEqual(self.ask(other, b"RECV").payload, b"a")
        self.assertEqual(self.ask(c, b"ACK 1").code, "no-msg")

    def test_waiting_reserve(self) -> None:
        """RESERVE with a wait gets the next message sent."""
        c, waiting = self.client(), self.client()
        waiting.send(b"RESERVE 5\n")
        self.ask(c, b"SEND late")
        self.clock.advance(0)
        self.assertEqual(waiting.replies()[0].payload, b"late")
        self.assertEqual(self.qstat(c)["reserved"], 1)

    def test_dead_letter_after_max_deliveries(self) -> None:
        """A message reserved --max-deliveries times without ACK moves to <queue>.dead."""
        c = self.client()
        self.ask(c, b"SEND @jobs poison")
        for _ in range(3):
            self.assertEqual(self.ask(c, b"RESERVE @jobs").payload, b"poison")
            self.ask(c, b"NACK 1")
        self.assertEqual(self.ask(c, b"RESERVE @jobs").code, "empty")
        self.assertEqual(self.qstat(c, b"jobs")["dead"], 1)
        self.assertEqual(self.ask(c, b"QUEUES").payload, b"jobs.dead 1\r\n")
        self.assertEqual(self.ask(c, b"RECV @jobs.dead").payload, b"poison")

    def test_dead_letter_by_ttr(self) -> None:
        """Expired reservations count as deliveries too."""
        c = self.client()
        self.ask(c, b"SEND x")
        for _ in range(3):
            self.ask(c, b"RESERVE")
            self.clock.advance(30)
            self.clock.advance(0)
        self.assertEqual(self.ask(c, b"RECV @default.dead").payload, b"x")

    def test_released_when_holder_disconnects(self) -> None:
        """A TCP holder that disconnects releases its reservations at once, in order."""
        holder, other = self.client(), self.client()
        for text in (b"a", b"b", b"c"):
            self.ask(holder, b"SEND " + text)
        self.ask(holder, b"RESERVE")
        self.ask(holder, b"RESERVE")
        holder.disconnect()
        self.clock.advance(0)
        self.assertEqual([self.ask(other, b"RECV").payload for _ in range(3)], [b"a", b"b", b"c"])

    def test_released_when_udp_session_ends(self) -> None:
        """A UDP session's reservations are released when it QUITs."""
        udp = UdpHarness(self.broker)
        other = self.client()
        self.ask(other, b"SEND x")
        udp.command(b"NAME u", ALICE)
        udp.send(b"RESERVE", ALICE)
        self.clock.advance(0)
        self.assertEqual(udp.received(ALICE)[0].payload, b"x")
        udp.command(b"QUIT", ALICE)
        self.clock.advance(0)
        self.assertEqual(self.ask(other, b"RECV").payload, b"x")

    def test_sessionless_udp_reservation(self) -> None:
        """Without a session, a UDP reservation belongs to the address and lasts until ACK or --ttr."""
        udp = UdpHarness(self.broker)
        self.ask(self.client(), b"SEND x")
        udp.send(b"RESERVE", ALICE)
        self.clock.advance(0)
        self.assertEqual(udp.received(ALICE)[0].text, "1")
        udp.send(b"ACK 1", BOB)
        self.clock.advance(0)
        self.assertEqual(udp.received(BOB)[0].code, "no-msg")
        udp.send(b"ACK 1", ALICE)
        self.clock.advance(0)
        self.assertEqual(udp.received(ALICE)[0].kind, "OK")


class MemoryReliableTests(ReliableDeliveryBehaviour, SynchronousTestCase):
    """Reliable delivery on the memory store."""


class LaterReliableTests(ReliableDeliveryBehaviour, SynchronousTestCase):
    """Reliable delivery on a queue store whose every answer comes later, in a Deferred."""

    kind = "later"


class SqliteReliableTests(ReliableDeliveryBehaviour, SynchronousTestCase):
    """Reliable delivery on the SQLite store."""

    kind = "sqlite"

    def test_pipelined_commands_see_earlier_changes(self) -> None:
        """Pipelined commands see what earlier ones did, though their replies wait for the commit."""
        c = self.client()
        c.send(b"SEND @jobs job\nRESERVE @jobs\nNACK 1\nRESERVE @jobs\nACK 1\nQSTAT @jobs\n")
        self.assertEqual(c.transport.value(), b"")
        replies = c.replies()
        self.assertEqual([r.kind for r in replies], ["OK", "DATA", "OK", "DATA", "OK", "DATA"])
        self.assertIn(b"acked 1\r\nredelivered 1\r\n", replies[-1].payload)

    def test_reply_after_commit(self) -> None:
        """A confirming reply is written only once the grouped transaction has committed."""
        c = self.client()
        c.send(b"SEND a\nSEND b\n")
        self.assertEqual(c.transport.value(), b"")
        self.clock.advance(0)
        self.assertEqual(c.transport.value(), b"OK 1 queued 1 bytes\r\nOK 2 queued 1 bytes\r\n")

    def test_nothing_runs_after_quit_waiting_for_commit(self) -> None:
        """A QUIT whose reply waits for the commit still stops the commands sent after it."""
        c = self.client()
        c.send(b"SEND a\nQUIT\nSEND b\n")
        self.clock.advance(0)
        self.assertEqual([r.kind for r in c.replies()], ["OK", "OK"])
        self.assertEqual(self.broker.queues.depths(), [("default", 1)])

    def test_held_replies_keep_their_order(self) -> None:
        """A reply held for the commit stays behind an earlier reply that is still waiting."""
        c = self.client()
        c.send(b"RECV @w 5\nSEND @other x\n")
        self.clock.advance(0)
        self.assertEqual(c.transport.value(), b"")
        self.clock.advance(5)
        self.assertEqual(c.transport.value(), b"ERR empty Error - no messages in queue.\r\nOK 1 queued 1 bytes\r\n")

    def fail_commits(self) -> None:
        """Make every later commit fail, as a full disk would."""

        def fail() -> None:
            raise sqlite3.OperationalError("database or disk is full")

        self.broker.durability.before_commit(fail)

    def test_failed_commit_answers_internal_error(self) -> None:
        """When the commit fails, the replies that waited for it become ERR internal, over TCP and UDP."""
        c = self.client()
        udp = UdpHarness(self.broker)
        self.fail_commits()
        c.send(b"SEND a\nPING\n")
        udp.send(b"SEND b")
        self.clock.advance(0)
        self.assertEqual([(r.kind, r.code) for r in c.replies()], [("ERR", "internal"), ("ERR", "internal")])
        self.assertEqual([(r.kind, r.code) for r in udp.received()], [("ERR", "internal")])
        self.assertEqual(len(self.flushLoggedErrors(sqlite3.OperationalError)), 1)


class RedisReliableTests(ReliableDeliveryBehaviour, SynchronousTestCase):
    """Reliable delivery on the Redis store (on a real redis-server)."""

    kind = "redis"
