"""Account passwords: salted scrypt hashing, and the cred checker over an account store."""

from __future__ import annotations

import threading

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.trial.unittest import TestCase

from msgsvc.domain.accounts import passwords
from msgsvc.domain.accounts.passwords import dummy_hash, hash_password, verify_password
from msgsvc.domain.accounts.realm import ScryptChecker, UnknownUser
from msgsvc.store.interfaces import Account
from msgsvc.store.memory import MemoryAccountStore
from tests.accounts_helpers import result_of
from tests.helpers import run_now


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
