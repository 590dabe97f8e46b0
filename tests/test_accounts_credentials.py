"""Credentials files: read_credentials, importing accounts, and twistd's --credentials and --max-upload."""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import TestCase

from msgsvc import startup
from msgsvc.domain.accounts.credentials import read_credentials
from msgsvc.domain.accounts.passwords import verify_password
from msgsvc.tap import BrokerService, Options, makeService
from tests.accounts_helpers import forum_broker, result_of
from tests.helpers import FakeClient, temp_path


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
            self.patch(startup, "tune_collector", lambda: None)  # the test process's collector stays as it is
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
