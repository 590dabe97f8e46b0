"""The server-wide budget for unfinished literals (--max-pending-input)."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from msgsvc.dispatch.commands import CommandSet, Text
from msgsvc.dispatch.table import CommandTable
from msgsvc.dispatch.verbs import build_table, general
from msgsvc.protocol.wire import Ok
from msgsvc.transports.input_budget import InputBudget
from msgsvc.transports.tcp import GREETING, ConnectionFactory
from tests.helpers import make_broker
from tests.socketlike import SocketHarness
from tests.test_tcp import _RecordedRefusals

LIMIT = 1000
OVER_BUDGET = b"ERR too-big the server holds too much unfinished input right now; try again later\r\n"


class InputBudgetTests(TestCase):
    """The budget object on its own."""

    def test_charge_within_limit(self) -> None:
        """Charges succeed up to the limit exactly, then fail without taking anything."""
        budget = InputBudget(10)
        self.assertTrue(budget.charge(6))
        self.assertTrue(budget.charge(4))
        self.assertFalse(budget.charge(1))
        self.assertEqual(budget.held, 10)

    def test_release(self) -> None:
        """Released bytes can be charged again."""
        budget = InputBudget(10)
        budget.charge(10)
        budget.release(3)
        self.assertTrue(budget.charge(3))
        self.assertEqual(budget.held, 10)


class BudgetedConnectionTests(TestCase):
    """Connections of one factory share its budget."""

    def setUp(self) -> None:
        self.broker = make_broker(max_clients=0, max_pending_input=LIMIT)
        self.table = build_table()
        self.table.refusals = _RecordedRefusals()
        self.factory = ConnectionFactory(self.broker, self.table, self.broker.clock)
        self.ports = iter(range(45000, 46000))

    def client(self, factory: ConnectionFactory | None = None) -> SocketHarness:
        """A connection of ``factory`` (by default the test's) whose greeting has been read."""
        harness = SocketHarness(factory or self.factory, next(self.ports))
        self.assertEqual(harness.read(), GREETING)
        return harness

    def held(self) -> int:
        """Bytes the factory's budget holds now."""
        return self.factory.budget.held

    def test_many_unfinished_literals_stay_within_budget(self) -> None:
        """Ten clients each sending 300 bytes of a 400-byte literal hold at most the budget."""
        clients = [self.client() for _ in range(10)]
        for c in clients:
            c.send(b"SEND {400}\n" + b"x" * 300)
            self.assertLessEqual(self.held(), LIMIT)
        self.assertEqual(self.held(), 900)

    def test_over_budget_literal_skipped_and_refused(self) -> None:
        """The literal that would pass the budget is read and dropped, answered ERR too-big; the client stays."""
        holders = [self.client() for _ in range(3)]
        for c in holders:
            c.send(b"SEND {400}\n" + b"x" * 300)
        late = self.client()
        late.send(b"#t1 SEND {400}\n" + b"y" * 300)
        late.send(b"y" * 100 + b"\r\nPING\n")
        self.assertEqual(late.read(), b"#t1 " + OVER_BUDGET + b"OK PONG\r\n")
        self.assertFalse(late.transport.disconnecting)
        self.assertEqual(self.broker.queues.depths(), [])
        self.assertEqual(self.held(), 900)  # the late literal gave back what it had taken
        self.assertEqual(
            self.table.refusals.calls,
            [(f"tcp 127.0.0.1:{late.transport.getPeer().port}", "too-big", OVER_BUDGET[12:-2].decode())],
        )

    def test_budget_returned_on_completion(self) -> None:
        """A completed literal no longer counts against the budget."""
        c = self.client()
        c.send(b"SEND {400}\n" + b"x" * 300)
        self.assertEqual(self.held(), 300)
        c.send(b"x" * 100 + b"\n")
        self.assertEqual(c.replies()[0].text, "1 queued 400 bytes")
        self.assertEqual(self.held(), 0)

    def test_budget_returned_on_disconnect(self) -> None:
        """A client leaving mid-literal gives its bytes back."""
        c = self.client()
        c.send(b"SEND {400}\n" + b"x" * 300)
        c.transport.abortConnection()
        self.broker.clock.advance(0)
        self.assertEqual(self.held(), 0)

    def test_budget_returned_on_idle_timeout(self) -> None:
        """A literal left unfinished until the idle timeout gives its bytes back when the connection ends."""
        c = self.client()
        c.send(b"SEND {400}\n" + b"x" * 300)
        self.broker.clock.advance(self.broker.config.idle_timeout)
        self.assertEqual(c.read(), b"* BYE idle-timeout\r\n")
        self.assertTrue(c.released)
        self.assertEqual(self.held(), 0)

    def test_refused_literals_not_charged(self) -> None:
        """A literal for an unknown verb or after a bad tag is skipped, so it costs nothing."""
        c = self.client()
        c.send(b"NOPE {400}\n" + b"x" * 300)
        self.assertEqual(self.held(), 0)
        c.send(b"x" * 100 + b"\n#bad! SEND {900}\n" + b"x" * 800)
        self.assertEqual(self.held(), 0)

    def test_sink_literals_not_charged(self) -> None:
        """A literal streamed to a sink (like a forum upload) is not held in memory, so it is not charged."""
        extra = CommandSet()
        received: list[bytes] = []

        class Sink:
            def write(self, data: bytes) -> None:
                received.append(data)

            def finish(self) -> str:
                return str(sum(map(len, received)))

            def abort(self) -> None:
                """Nothing to discard."""

        @extra.verb("PUT", Text("data"), summary="to a sink", literal_sink=lambda broker, session: Sink())
        def put(broker, session, data: str) -> Ok:
            return Ok(data)

        factory = ConnectionFactory(self.broker, CommandTable([general.commands, extra]), self.broker.clock)
        c = self.client(factory)
        c.send(b"PUT {5000}\n" + b"z" * 4000)
        self.assertEqual(factory.budget.held, 0)
        c.send(b"z" * 1000 + b"\n")
        self.assertEqual(c.read(), b"OK 5000\r\n")

    def test_factories_have_their_own_budget(self) -> None:
        """The budget is per listener (factory), taken from --max-pending-input."""
        other = ConnectionFactory(self.broker, build_table(), self.broker.clock)
        self.assertIsNot(other.budget, self.factory.budget)
        self.assertEqual(other.budget.limit, LIMIT)
