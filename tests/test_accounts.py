"""Forum accounts through the broker: REGISTER, LOGIN, logout, the realm, login rules and throttling."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import TestCase

from msgsvc.config import Config
from msgsvc.domain.accounts.passwords import verify_password
from msgsvc.domain.accounts.realm import IForumUser
from msgsvc.domain.accounts.throttle import LOGIN_WINDOW
from msgsvc.domain.broker import Broker
from msgsvc.domain.errors import AuthFailed, Exists, InUse, NotLoggedIn, NoUser
from msgsvc.store import open_stores
from tests.accounts_helpers import forum_broker, refusal_of, result_of
from tests.helpers import FakeClient, TcpHarness


class AccountsTests(TestCase):
    """REGISTER / LOGIN / logout through the broker's forum."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.broker = forum_broker(self.clock)
        self.accounts = self.broker.forum.accounts

    def session(self, port: int = 40000, host: str = "127.0.0.1"):
        return self.broker.open_session(FakeClient(peer=(host, port)))

    def register(self, session, name: str = "alice", secret: str = "pw") -> str:
        return result_of(self.accounts.register(session, name, secret))

    def test_register_logs_in_and_names(self) -> None:
        """REGISTER creates the account, logs it in and gives the session its name."""
        session = self.session()
        self.assertEqual(self.register(session), "alice")
        self.assertEqual(result_of(self.accounts.user(session)), "alice")
        self.assertIs(self.broker.chat.named("ALICE"), session)

    def test_register_existing(self) -> None:
        """REGISTER of a taken name, ignoring case, is ERR exists."""
        self.register(self.session(40001))
        kind, _ = refusal_of(self.accounts.register(self.session(40002), "Alice", "x"))
        self.assertIs(kind, Exists)

    def test_register_name_of_guest(self) -> None:
        """REGISTER of a name a guest uses succeeds: the account takes the name, the guest is left without one."""
        guest = self.session(40001)
        self.broker.chat.set_name(guest, "carol")
        registrant = self.session(40002)
        self.assertEqual(self.register(registrant, "Carol"), "Carol")
        self.assertTrue(result_of(self.broker.forum.is_account("carol")))
        self.assertIsNone(guest.name)
        self.assertIs(self.broker.chat.named("carol"), registrant)
        self.assertEqual(guest.client.events, [b"* LEAVE carol\r\n"])

    def test_no_plaintext_stored(self) -> None:
        """The store keeps only a salted hash of the password."""
        self.register(self.session(), "alice", "correct-horse")
        account = result_of(self.broker.forum.accounts._store.get_account("alice"))
        self.assertNotIn("correct-horse", repr(vars(self.broker.forum.accounts._store)))
        self.assertTrue(account.password_hash.startswith("scrypt$1$"))
        self.assertTrue(verify_password(account.password_hash, "correct-horse"))

    def test_login(self) -> None:
        """LOGIN with the right password logs in, with the name spelt as registered."""
        self.register(self.session(40001), "Alice")
        self.broker.close_session(self.broker.sessions[0])
        session = self.session(40002)
        self.assertEqual(result_of(self.accounts.login(session, "alice", "pw")), "Alice")
        self.assertEqual(session.name, "Alice")

    def test_login_unknown_and_wrong(self) -> None:
        """LOGIN as nobody is no-user; with a wrong password, auth."""
        self.register(self.session(40001))
        self.assertEqual(refusal_of(self.accounts.login(self.session(40002), "bob", "pw"))[0], NoUser)
        self.assertEqual(
            refusal_of(self.accounts.login(self.session(40003), "alice", "no")), (AuthFailed, "Invalid password")
        )

    def test_single_login(self) -> None:
        """An account logged in elsewhere is in-use, with the spec's text."""
        self.register(self.session(40001))
        refusal = refusal_of(self.accounts.login(self.session(40002), "ALICE", "pw"))
        self.assertEqual(refusal, (InUse, "alice has already logged in"))

    def test_released_on_close(self) -> None:
        """Closing the session logs the account out so it can log in again."""
        first = self.session(40001)
        self.register(first)
        self.broker.close_session(first)
        self.assertEqual(result_of(self.accounts.login(self.session(40002), "alice", "pw")), "alice")

    def test_login_twice_on_one_session(self) -> None:
        """A session already logged in cannot LOGIN or REGISTER again."""
        session = self.session()
        self.register(session)
        self.assertEqual(refusal_of(self.accounts.login(session, "alice", "pw"))[0], InUse)
        self.assertEqual(refusal_of(self.accounts.register(session, "other", "pw"))[0], InUse)

    def test_login_name_held_by_guest(self) -> None:
        """LOGIN whose name a guest holds (named before the account existed) takes the name from the guest."""
        first = self.session(40001)
        self.register(first)
        self.broker.close_session(first)
        guest = self.session(40002)
        self.broker.chat.set_name(guest, "ALICE")
        session = self.session(40003)
        self.assertEqual(result_of(self.accounts.login(session, "alice", "pw")), "alice")
        self.assertIsNone(guest.name)
        self.assertEqual(guest.client.events, [b"* LEAVE ALICE\r\n"])
        self.assertEqual((session.name, session.display_name), ("alice", "alice"))

    def test_is_account(self) -> None:
        """is_account answers for registered names ignoring case, and for one being registered."""
        self.register(self.session(40001))
        self.assertTrue(result_of(self.broker.forum.is_account("ALICE")))
        self.assertFalse(result_of(self.broker.forum.is_account("bob")))
        hashing: Deferred = Deferred()
        self.accounts.run_in_thread = lambda function, *args: hashing.addCallback(lambda _: function(*args))
        pending = self.accounts.register(self.session(40002), "bob", "pw")
        self.assertTrue(result_of(self.broker.forum.is_account("Bob")))
        hashing.callback(None)
        self.assertEqual(result_of(pending), "bob")

    def test_client_leaves_during_login(self) -> None:
        """A login that completes after its client left logs nobody in."""
        self.register(self.session(40001), "alice")
        self.broker.close_session(self.broker.sessions[0])
        hashing: Deferred = Deferred()
        self.accounts.run_in_thread = lambda function, *args: hashing.addCallback(lambda _: function(*args))
        session = self.session(40002)
        pending = self.accounts.login(session, "alice", "pw")
        self.broker.close_session(session)
        hashing.callback(None)
        self.assertEqual(refusal_of(pending)[0], NotLoggedIn)
        self.assertIsNone(self.accounts.realm.user_of(session))

    def test_commands_wait_for_running_login(self) -> None:
        """A command sent after LOGIN sees the login's outcome, not the state before it."""
        self.register(self.session(40001))
        self.broker.close_session(self.broker.sessions[0])
        hashing: Deferred = Deferred()
        self.accounts.run_in_thread = lambda function, *args: hashing.addCallback(lambda _: function(*args))
        session = self.session(40002)
        login = self.accounts.login(session, "alice", "pw")
        user = session.settled().addCallback(lambda _: self.accounts.user(session))
        self.assertNoResult(user)
        hashing.callback(None)
        self.assertEqual(result_of(login), "alice")
        self.assertEqual(result_of(user), "alice")
        self.assertFalse(session.held)

    def test_pipelined_commands_see_the_login(self) -> None:
        """Commands pipelined after LOGIN (chat, microblog, forum) run as the logged-in user."""
        self.accounts.run_in_thread = lambda function, *args: deferLater(self.clock, 0.05, function, *args)
        first = TcpHarness(self.broker, 40011)
        first.send(b"REGISTER alice pw\n")
        self.clock.advance(1)
        first.disconnect()
        other = TcpHarness(self.broker, 40012)
        other.output()
        other.send(b"LOGIN alice pw\nTWEET #t hi\nSAY hi\nCRT t\nTAGGED #t\n")
        self.clock.advance(1)
        replies = other.replies()
        self.assertEqual([r.kind for r in replies], ["OK", "OK", "OK", "OK", "DATA"], replies)
        self.assertIn(b"alice #t hi", replies[-1].payload)

    def test_realm_gives_forum_avatars_only(self) -> None:
        """The realm refuses interfaces other than IForumUser."""
        realm = self.accounts.realm
        self.assertRaises(NotImplementedError, realm.requestAvatar, "alice", self.session(), object)
        interface, avatar, logout = realm.requestAvatar("alice", self.session(40001), IForumUser)
        self.assertIs(interface, IForumUser)
        self.assertEqual(avatar.name, "alice")
        logout()
        self.assertIsNone(realm.user_of(avatar.session))

    def test_failed_logins_throttled(self) -> None:
        """After login_limit failures from a /24 even the right password is refused there for the window."""
        self.register(self.session(40001))
        self.broker.close_session(self.broker.sessions[0])
        limit = self.broker.config.login_limit
        for n in range(limit):
            session = self.session(41000, f"127.0.0.{n + 1}")
            self.assertEqual(refusal_of(self.accounts.login(session, "alice", "bad"))[0], AuthFailed)
            self.broker.close_session(session)
        refusal = refusal_of(self.accounts.login(self.session(42000, "127.0.0.200"), "alice", "pw"))
        self.assertEqual(refusal, (AuthFailed, "too many failed logins from 127.0.0.0/24; try again in 60 seconds"))
        self.assertEqual(result_of(self.accounts.login(self.session(42001, "10.1.1.1"), "alice", "pw")), "alice")
        self.broker.close_session(self.broker.sessions[-1])
        self.clock.advance(LOGIN_WINDOW)
        self.assertEqual(result_of(self.accounts.login(self.session(42002), "alice", "pw")), "alice")

    def test_real_thread_register_and_login(self) -> None:
        """With the default runner, REGISTER and LOGIN complete through the thread pool."""
        clock = Clock()
        broker = Broker(open_stores("memory", clock), Config(password_cost=1, max_clients=0), clock)
        first = broker.open_session(FakeClient())
        d = broker.forum.accounts.register(first, "dave", "pw")
        self.assertNoResult(d)

        def login(_):
            broker.close_session(first)
            return broker.forum.accounts.login(broker.open_session(FakeClient()), "dave", "pw")

        return d.addCallback(login).addCallback(self.assertEqual, "dave")
