"""Tests for the broker's client registry: cap, names, shutdown."""

from twisted.trial.unittest import TestCase

from msgsvc.domain.broker import SHUTDOWN_GRACE
from msgsvc.domain.errors import NameTaken
from tests.helpers import FakeClient, make_broker


class RegistryTests(TestCase):
    """Admitting and releasing clients."""

    def test_cap(self) -> None:
        """The cap admits max_clients clients; a leaving one frees its slot."""
        broker = make_broker(max_clients=3)
        sessions = [broker.open_session(FakeClient()) for _ in range(3)]
        self.assertIsNone(broker.open_session(FakeClient()))
        broker.close_session(sessions[0])
        self.assertIsNotNone(broker.open_session(FakeClient()))

    def test_no_cap(self) -> None:
        """max_clients 0 means no cap."""
        broker = make_broker(max_clients=0)
        self.assertTrue(all(broker.open_session(FakeClient()) for _ in range(100)))

    def test_one_off_sessions_take_no_slot(self) -> None:
        """A lone datagram's context does not count toward the cap."""
        broker = make_broker(max_clients=1)
        broker.one_off_session(FakeClient())
        self.assertIsNotNone(broker.open_session(FakeClient()))

    def test_ids_increase(self) -> None:
        """Every client of a run gets a new id."""
        broker = make_broker(max_clients=0)
        ids = [broker.open_session(FakeClient()).id for _ in range(3)]
        self.assertEqual(ids, [1, 2, 3])

    def test_close_is_idempotent(self) -> None:
        """Closing twice releases once."""
        broker = make_broker()
        session = broker.open_session(FakeClient())
        broker.close_session(session)
        broker.close_session(session)
        self.assertEqual(broker.sessions, [])


class NameTests(TestCase):
    """Client names are unique among connected clients, ignoring case."""

    def test_unique_ignoring_case(self) -> None:
        """A name held by another client is refused whatever its case."""
        broker = make_broker()
        alice = broker.open_session(FakeClient())
        broker.chat.set_name(alice, "Alice")
        other = broker.open_session(FakeClient())
        error = self.assertRaises(NameTaken, broker.chat.set_name, other, "ALICE")
        self.assertEqual(error.text, "ALICE is already in use")

    def test_name_freed_on_leave_and_rename(self) -> None:
        """Renaming or leaving frees the old name."""
        broker = make_broker()
        alice = broker.open_session(FakeClient())
        broker.chat.set_name(alice, "alice")
        broker.chat.set_name(alice, "alicia")
        bob = broker.open_session(FakeClient())
        broker.chat.set_name(bob, "alice")
        broker.close_session(bob)
        self.assertIsNone(broker.chat.named("ALICE"))
        self.assertIs(broker.chat.named("Alicia"), alice)


class ShutdownTests(TestCase):
    """Stopping the service."""

    def test_everyone_hears_bye(self) -> None:
        """Every client is closed with reason 'shutdown'; shutdown ends when all are gone."""
        broker = make_broker()
        clients = [FakeClient(), FakeClient()]
        sessions = [broker.open_session(c) for c in clients]
        done = broker.shutdown()
        self.assertEqual([c.closed_with for c in clients], ["shutdown", "shutdown"])
        self.assertNoResult(done)
        for session in sessions:
            broker.close_session(session)
        self.successResultOf(done)
        self.assertIsNone(broker.open_session(FakeClient()))

    def test_gives_up_after_grace(self) -> None:
        """Clients that do not go are not waited for forever."""
        broker = make_broker()
        broker.open_session(FakeClient())
        done = broker.shutdown()
        broker.clock.advance(SHUTDOWN_GRACE)
        self.successResultOf(done)
