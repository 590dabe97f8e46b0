"""Events gathered per reactor turn (TurnWrites): one write per client however many events a turn brings."""

from msgsvc.dispatch.verbs import build_table
from msgsvc.transports.tcp import ConnectionFactory
from tests.helpers import TcpHarness
from tests.tcp_helpers import Connected, count_writes


class TurnTests(Connected):
    """Events are gathered per reactor turn: one write per client however many a turn brings."""

    settings = {"max_clients": 0}

    def members(self, count: int) -> list:
        """``count`` connections of one listener, each named, their output so far read."""
        factory = ConnectionFactory(self.broker, build_table(), self.clock)
        harnesses = [TcpHarness(self.broker, next(self.ports), factory=factory) for _ in range(count)]
        for number, harness in enumerate(harnesses):
            harness.send(b"NAME m%d\n" % number)
            harness.output()
        return harnesses

    def test_one_write_per_member_per_turn(self):
        """Three SAYs in one turn reach each other member in one write, in the order said."""
        speaker, *others = self.members(4)
        writes = [count_writes(member) for member in others]
        speaker.send(b"SAY one\nSAY two\n")
        speaker.send(b"SAY three\n")
        self.assertEqual(writes, [[], [], []])
        self.clock.advance(0)
        expected = b"* CHAT m0 one\r\n* CHAT m0 two\r\n* CHAT m0 three\r\n"
        self.assertEqual(writes, [[expected]] * 3)
        self.clock.advance(0)
        self.assertEqual(len(writes[0]), 1)

    def test_own_read_writes_events_first(self):
        """A member's own read in the same turn writes the events gathered before its replies, in one write."""
        speaker, listener = self.members(2)
        writes = count_writes(listener)
        speaker.send(b"SAY hi\n")
        listener.send(b"PING\n")
        self.assertEqual(writes, [b"* CHAT m0 hi\r\nOK PONG\r\n"])
        self.clock.advance(0)
        self.assertEqual(len(writes), 1)

    def test_reply_after_an_event_keeps_its_place(self):
        """A reply released in the same turn after a gathered event (a waiting RECV) goes out after it."""
        speaker, waiter = self.members(2)
        waiter.send(b"RECV @q 5\n")
        writes = count_writes(waiter)
        speaker.send(b"SAY hi\nSEND @q x\n")
        self.clock.advance(0)
        self.assertEqual(b"".join(writes), b"* CHAT m0 hi\r\nDATA 1 1\r\nx\r\n")

    def test_gone_member_is_skipped(self):
        """A member that left during the turn is not written to at its end."""
        speaker, gone, stays = self.members(3)
        speaker.send(b"SAY hi\n")
        gone.disconnect()
        gone.transport.clear()
        self.clock.advance(0)
        self.assertEqual(gone.transport.value(), b"")
        self.assertIn(b"* CHAT m0 hi\r\n", stays.output())
