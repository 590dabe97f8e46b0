"""Forum accounts: password hashing, the cred checker and realm, login rules, throttling, import."""

from __future__ import annotations

import threading

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import TestCase

from msgsvc.config import Config
from msgsvc.domain.accounts import passwords
from msgsvc.domain.accounts.credentials import read_credentials
from msgsvc.domain.accounts.passwords import dummy_hash, hash_password, verify_password
from msgsvc.domain.accounts.realm import IForumUser, ScryptChecker, UnknownUser
from msgsvc.domain.accounts.throttle import LOGIN_WINDOW
from msgsvc.domain.broker import Broker
from msgsvc.domain.errors import AuthFailed, DomainError, Exists, InUse, NotLoggedIn, NoUser
from msgsvc.store import open_stores
from msgsvc.store.interfaces import Account
from msgsvc.store.memory import MemoryAccountStore
from msgsvc.tap import BrokerService, Options, makeService
from tests.helpers import FakeClient, TcpHarness, make_broker, run_now, temp_path


def forum_broker(clock: Clock | None = None, **settings):
    """A broker with the cheapest password hash, hashing in place."""
    broker = make_broker(clock, password_cost=1, **settings)
    return broker


def result_of(d: Deferred):
    """The result of a Deferred that has already fired (a Failure is returned, not raised)."""
    results = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    return results[0]


def refusal_of(d: Deferred) -> tuple[type[DomainError], str]:
    """The (error type, text) a Deferred failed with; it must have failed with a DomainError."""
    failure = result_of(d)
    failure.trap(DomainError)
    return type(failure.value), failure.value.text


class HashingTests(TestCase):
    """Salted scrypt records."""

    def test_round_trip(self) -> None:
        """A record verifies its own password and no other."""
        record = hash_password("s3cret", 1)
        self.assertTrue(verify_password(record, "s3cret"))
        self.assertFalse(verify_password(record, "s3creT"))

    def test_salted_and_no_plaintext(self) -> None:
        """Two hashes of one password differ and neither contains it."""
        first, second = hash_password("s3cret", 1), hash_password("s3cret", 1)
        self.assertNotEqual(first, second)
        self.assertNotIn("s3cret", first)
        self.assertTrue(first.startswith("scrypt$1$"))

    def test_other_cost_still_verifies(self) -> None:
        """A record made at another cost verifies with the cost it names."""
        self.assertTrue(verify_password(hash_password("pw", 3), "pw"))

    def test_dummy_matches_nothing(self) -> None:
        """The dummy record has the real format and cost but matches no password."""
        record = dummy_hash(4)
        self.assertTrue(record.startswith("scrypt$4$8$1$"))
        self.assertFalse(verify_password(record, ""))

    def test_cost_range(self) -> None:
        """A cost outside 1-20 is refused."""
        self.assertRaises(ValueError, hash_password, "pw", 0)
        self.assertRaises(ValueError, hash_password, "pw", 21)


class CheckerTests(TestCase):
    """ScryptChecker over an account store."""

    def setUp(self) -> None:
        self.store = MemoryAccountStore()
        self.store.add_account(Account("Alice", hash_password("pw", 2)))
        self.calls: list[tuple] = []

        def runner(function, *args):
            self.calls.append((function, *args))
            return run_now(function, *args)

        self.checker = ScryptChecker(self.store, 2, runner)

    def test_good_password(self) -> None:
        """The right password yields the account name as registered, whatever the case typed."""
        self.assertEqual(result_of(self.checker.requestAvatarId(UsernamePassword("alice", "pw"))), "Alice")

    def test_wrong_password(self) -> None:
        """A wrong password fails with UnauthorizedLogin (not UnknownUser)."""
        failure = result_of(self.checker.requestAvatarId(UsernamePassword("alice", "nope")))
        self.assertIs(failure.check(UnknownUser, UnauthorizedLogin), UnauthorizedLogin)

    def test_unknown_user_checks_dummy(self) -> None:
        """An unknown user fails with UnknownUser after a hash check at the same cost (equal timing)."""
        failure = result_of(self.checker.requestAvatarId(UsernamePassword("bob", "pw")))
        self.assertTrue(failure.check(UnknownUser))
        ((function, record, secret),) = self.calls
        self.assertIs(function, verify_password)
        self.assertTrue(record.startswith("scrypt$2$"))
        self.assertEqual(secret, "pw")

    def test_hash_off_reactor_thread(self) -> None:
        """By default the hash is checked in a worker thread, not the reactor thread."""
        threads: list[threading.Thread] = []
        real = passwords.verify_password

        def spy(record, secret):
            threads.append(threading.current_thread())
            return real(record, secret)

        self.patch(passwords, "verify_password", spy)
        checker = ScryptChecker(self.store, 2)
        d = checker.requestAvatarId(UsernamePassword("alice", "pw"))
        self.assertNoResult(d)

        def check(name):
            self.assertEqual(name, "Alice")
            self.assertIsNot(threads[0], threading.main_thread())

        return d.addCallback(check)


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


class CredentialsFileTests(TestCase):
    """read_credentials and --credentials."""

    def write(self, content: bytes) -> str:
        path = temp_path(self)
        with open(path, "wb") as target:
            target.write(content)
        return path

    def test_read(self) -> None:
        """Pairs are read, blank lines and CRLF endings tolerated."""
        path = self.write(b"alice pw1\r\n\n  bob   pw2  \n")
        self.assertEqual(read_credentials(path), [("alice", "pw1"), ("bob", "pw2")])

    def test_bad_files(self) -> None:
        """Malformed lines, bad names, duplicates and non-ASCII name the line, never the password."""
        cases = {
            b"alice\n": "line 1: expected 'username password'",
            b"alice pw extra\n": "expected",
            b"ok pw\na/b hunter2\n": "line 2: a name (chat name or forum user name)",
            b"alice hunter2\nALICE hunter3\n": "appears twice",
            b"alice caf\xc3\xa9\n": "not ASCII",
            b"Anonymous pw\n": "line 1: the user name Anonymous is reserved",
        }
        for content, expected in cases.items():
            error = self.assertRaises(ValueError, read_credentials, self.write(content))
            self.assertIn(expected, str(error))
            self.assertNotIn("hunter", str(error))

    def test_missing_file(self) -> None:
        """A file that cannot be read is a clear error."""
        error = self.assertRaises(ValueError, read_credentials, temp_path(self))
        self.assertIn("cannot read credentials file", str(error))

    def test_import(self) -> None:
        """Imported accounts are hashed, log in, and an existing account keeps its password."""
        broker = forum_broker()
        accounts = broker.forum.accounts
        result_of(accounts.register(broker.open_session(FakeClient()), "alice", "old"))
        self.assertEqual(result_of(accounts.import_credentials([("alice", "new"), ("bob", "pw")])), (1, 1))
        self.assertNotIn("'pw'", repr(vars(accounts._store)))
        bob = result_of(accounts._store.get_account("bob"))
        self.assertTrue(verify_password(bob.password_hash, "pw"))
        alice = result_of(accounts._store.get_account("alice"))
        self.assertTrue(verify_password(alice.password_hash, "old"))

    def test_tap_credentials(self) -> None:
        """twistd msgsvc --credentials imports the file at start; no plaintext reaches the database file."""
        path = self.write(b"yoda jedi-master\nluke xwing\n")
        database = temp_path(self, "msgsvc.sqlite")
        options = Options()
        options.parseOptions(["--credentials", path, "--port", "0", "--store", "sqlite:" + database])
        service = makeService(options, MemoryReactorClock())
        (broker_service,) = [child for child in service if isinstance(child, BrokerService)]
        if broker_service.broker is None:  # the store opens when the application starts
            service.getServiceNamed("startup").privilegedStartService()
        store = broker_service.broker.forum.accounts._store
        self.assertEqual(options.credentials, [])
        yoda = result_of(store.get_account("yoda"))
        self.assertTrue(verify_password(yoda.password_hash, "jedi-master"))
        broker_service.broker.stores.close()
        with open(database, "rb") as file:
            content = file.read()
        self.assertIn(b"yoda", content)
        self.assertNotIn(b"jedi-master", content)
        self.assertNotIn(b"xwing", content)

    def test_tap_bad_credentials(self) -> None:
        """A bad credentials file stops start-up with a usage error."""
        options = Options()
        error = self.assertRaises(usage.UsageError, options.parseOptions, ["--credentials", self.write(b"x\n")])
        self.assertIn("line 1", str(error))

    def test_tap_max_upload(self) -> None:
        """--max-upload reaches the config and must be positive."""
        options = Options()
        options.parseOptions(["--max-upload", "1000"])
        self.assertEqual(options.config().max_upload, 1000)
        default = Options()
        default.parseOptions([])
        self.assertEqual(default.config().max_upload, 67108864)
        self.assertRaises(usage.UsageError, Options().parseOptions, ["--max-upload", "0"])
