"""Replies a front end cannot deliver: RECV and RESERVE give back what they took (Data.undelivered)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from msgsvc.dispatch.verbs import queue as verbs
from msgsvc.domain.errors import NoMessage
from msgsvc.protocol.wire import Data
from msgsvc.transports.udp import MAX_DATAGRAM
from tests.helpers import TcpHarness, UdpHarness
from tests.queue_stores import QueueFixture

ALICE = ("127.0.0.1", 52001)
BIG = b"x" * MAX_DATAGRAM


class UndeliveredBehaviour(QueueFixture):
    """What every store shows when a reply carrying a message cannot be delivered."""

    def send(self, *payloads: bytes) -> None:
        for payload in payloads:
            self.now(self.queues.send("default", payload))

    def qstat(self) -> dict[str, int]:
        return self.now(self.queues.stats("default"))

    def test_recv_reply_undelivered_gives_the_message_back(self) -> None:
        """An undelivered RECV reply puts its message back at the head, once, however often it is called."""
        self.send(b"a", b"b")
        me = self.session()
        reply: Data = self.now(verbs.recv(self.broker, me, "default", 0.0))
        self.assertEqual((reply.label, reply.payload), ("1", b"a"))
        reply.undelivered()
        reply.undelivered()
        self.clock.advance(0)
        self.assertEqual(self.qstat()["ready"], 2)
        self.assertEqual(self.qstat()["received"], 0)
        again: Data = self.now(verbs.recv(self.broker, me, "default", 0.0))
        self.assertEqual((again.label, again.payload), ("1", b"a"))

    def test_reserve_reply_undelivered_ends_the_reservation(self) -> None:
        """An undelivered RESERVE reply releases the message to the head, its delivery not counted."""
        self.send(b"a", b"b")
        me = self.session()
        reply: Data = self.now(verbs.reserve(self.broker, me, "default", 0.0))
        reply.undelivered()
        self.clock.advance(0)
        self.assertRaises(NoMessage, verbs.ack, self.broker, me, 1)
        figures = self.qstat()
        self.assertEqual((figures["ready"], figures["reserved"], figures["redelivered"]), (2, 0, 0))
        self.assertEqual(self.now(self.queues.reserve(me, "default", 0)).deliveries, 1)

    def test_too_big_recv_over_udp_keeps_the_message(self) -> None:
        """A RECV whose reply does not fit a datagram is refused, and the message stays first for TCP."""
        tcp = TcpHarness(self.broker)
        tcp.send(b"SEND {%d}\n" % len(BIG) + BIG + b"\nSEND small\n")
        tcp.output()
        udp = UdpHarness(self.broker)
        self.assertEqual(udp.command(b"RECV", ALICE).code, "too-big")
        self.assertEqual(udp.command(b"RESERVE", ALICE).code, "too-big")
        self.assertEqual(self.qstat()["ready"], 2)
        self.assertEqual(tcp.command(b"RECV").payload, BIG)

    def test_too_big_message_goes_on_to_the_next_waiter(self) -> None:
        """A waiting UDP receiver that cannot take the message leaves it to the next receiver waiting."""
        udp = UdpHarness(self.broker)
        udp.send(b"RECV 10", ALICE)
        tcp = TcpHarness(self.broker)
        tcp.send(b"RECV 10\n")
        tcp.output()
        tcp.send(b"SEND {%d}\n" % len(BIG) + BIG + b"\n")
        self.clock.advance(0)
        self.assertEqual(udp.received(ALICE)[0].code, "too-big")
        received, sent = tcp.replies()
        self.assertEqual((received.payload, sent.kind), (BIG, "OK"))
        self.assertEqual(self.qstat()["received"], 1)


class MemoryUndeliveredTests(UndeliveredBehaviour, SynchronousTestCase):
    """Undelivered replies on the memory store."""


class SqliteUndeliveredTests(UndeliveredBehaviour, SynchronousTestCase):
    """Undelivered replies on the SQLite store."""

    kind = "sqlite"


class LaterUndeliveredTests(UndeliveredBehaviour, SynchronousTestCase):
    """Undelivered replies on a queue store whose every answer comes later."""

    kind = "later"


class RedisUndeliveredTests(UndeliveredBehaviour, SynchronousTestCase):
    """Undelivered replies on the Redis store (on a real redis-server)."""

    kind = "redis"
