"""The SQLite store: what survives closing and reopening the database, and what is refused at start."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from msgsvc.domain.microblog import ALL
from msgsvc.store import StoreError, Stores, open_stores
from msgsvc.store.database import MIGRATIONS, SCHEMA_VERSION, Database
from msgsvc.store.interfaces import Account, Post, Upload
from tests.helpers import FakeClient, make_broker, temp_dir


class SqliteDurabilityTests(SynchronousTestCase):
    """What survives closing and reopening the database, and what is refused at start."""

    def setUp(self) -> None:
        self.path = os.path.join(temp_dir(self), "msgsvc.sqlite")
        self.clock = Clock()

    def reopen(self, stores: Stores | None = None) -> Stores:
        if stores is not None:
            stores.close()
        stores = open_stores("sqlite:" + self.path, self.clock)
        self.addCleanup(stores.close)
        return stores

    def settle(self, deferred: Deferred[Any]) -> Any:
        self.clock.advance(0)
        return self.successResultOf(deferred)

    def committed(self, result: Any) -> Any:
        """A queue store's result, once the grouped commit has run."""
        self.clock.advance(0)
        return result

    def test_messages_survive_and_reservations_end(self) -> None:
        """Queued and reserved messages survive a restart; reserved ones are ready again, in order."""
        stores = self.reopen()
        for n in range(3):
            self.committed(stores.queues.enqueue("q", b"m%d" % n, 1.0))
        self.committed(stores.queues.reserve("q", 2.0))
        stores = self.reopen(stores)
        got = [self.committed(stores.queues.dequeue("q", 3.0)) for _ in range(3)]
        self.assertEqual([(m.id, m.payload, m.deliveries) for m in got], [(1, b"m0", 1), (2, b"m1", 0), (3, b"m2", 0)])

    def test_message_taken_in_its_turn_is_never_written(self) -> None:
        """A message sent and received before the commit leaves no row, and its id is still never reused."""
        stores = self.reopen()
        self.assertEqual(stores.queues.enqueue("q", b"quick", 1.0), 1)
        self.assertEqual(stores.queues.dequeue("q", 1.0).payload, b"quick")
        self.clock.advance(0)
        (rows,) = stores.queues._db.read("SELECT COUNT(*) FROM messages").fetchone()
        self.assertEqual(rows, 0)
        stores = self.reopen(stores)
        self.assertEqual(self.committed(stores.queues.enqueue("q", b"next", 1.0)), 2)

    def test_written_messages_come_before_this_turns(self) -> None:
        """Messages already written are taken before those sent in the current turn; a reserved one is written."""
        stores = self.reopen()
        self.committed(stores.queues.enqueue("q", b"old", 1.0))
        stores.queues.enqueue("q", b"new", 1.0)
        taken = stores.queues.dequeue("q", 1.0)
        reserved = stores.queues.reserve("q", 1.0)
        self.assertEqual((taken.payload, reserved.payload, reserved.deliveries), (b"old", b"new", 1))
        stores = self.reopen(stores)
        self.assertEqual(self.committed(stores.queues.dequeue("q", 2.0)).payload, b"new")

    def test_given_back_messages_survive_first_in_line(self) -> None:
        """Messages given back (one received, one reserved, one never written) are durable and first in line."""
        stores = self.reopen()
        for n in range(3):
            stores.queues.enqueue("q", b"m%d" % n, 1.0)
        self.clock.advance(0)
        stores.queues.enqueue("q", b"m3", 1.0)
        received, reserved = stores.queues.dequeue("q", 2.0), stores.queues.reserve("q", 2.0)
        stores.queues.dequeue("q", 2.0)
        quick = stores.queues.dequeue("q", 2.0)
        stores.queues.give_back("q", quick)
        stores.queues.unreserve(reserved.id)
        stores.queues.give_back("q", received)
        self.assertEqual(stores.queues.stats("q", 2.0).ready, 3)
        stores = self.reopen(stores)
        got = [self.committed(stores.queues.dequeue("q", 3.0)) for _ in range(4)]
        self.assertEqual([(m.payload, m.deliveries) for m in got[:3]], [(b"m0", 0), (b"m1", 0), (b"m3", 0)])
        self.assertIsNone(got[3])

    def test_ids_unique_across_restarts(self) -> None:
        """A message id is never reused, even after the newest message was removed."""
        stores = self.reopen()
        self.committed(stores.queues.enqueue("q", b"a", 1.0))
        self.committed(stores.queues.dequeue("q", 1.0))
        stores = self.reopen(stores)
        self.assertEqual(self.committed(stores.queues.enqueue("q", b"b", 1.0)), 2)

    def test_tweets_survive(self) -> None:
        """Microblog messages and their hashtag index survive a restart."""
        stores = self.reopen()
        self.settle(stores.tweets.post("ann", "hi #x", frozenset({"x"})))
        stores = self.reopen(stores)
        self.assertEqual(self.successResultOf(stores.tweets.tagged("x", 5))[0].text, "hi #x")
        self.assertEqual(self.settle(stores.tweets.post("bob", "more", frozenset())), 2)

    def test_confirmation_waits_for_commit(self) -> None:
        """A change is visible at once but confirmed only after its commit; closing commits what is pending."""
        stores = self.reopen()
        self.assertEqual(stores.queues.enqueue("q", b"a", 1.0), 1)
        self.assertEqual(stores.queues.depths(), [("q", 1)])
        confirmed = stores.durability.confirm("reply")
        self.assertNoResult(confirmed)
        stores.close()
        self.assertEqual(self.successResultOf(confirmed), "reply")
        self.assertEqual(stores.durability.confirm("later"), "later")

    def test_forum_survives(self) -> None:
        """Accounts, threads, posts and uploaded files survive a restart; unrecorded files are swept."""
        stores = self.reopen()
        self.settle(stores.accounts.add_account(Account("Alice", "scrypt$1$8$1$salt$digest")))
        self.settle(stores.forum.create_thread("t", "Alice"))
        self.settle(stores.forum.add_post("t", "Alice", "first"))
        part = stores.files.begin()
        part.write(b"file bytes")
        blob = stores.files.keep(part)
        self.settle(stores.forum.add_upload("t", Upload("Alice", "f.txt", blob)))
        orphan = stores.files.keep(stores.files.begin())  # a crash between keeping and recording
        stores = self.reopen(stores)
        self.assertEqual(self.successResultOf(stores.accounts.get_account("ALICE")).name, "Alice")
        entries = self.successResultOf(stores.forum.entries("t"))
        self.assertEqual(entries, [Post(1, "Alice", "first"), Upload("Alice", "f.txt", blob)])
        size, stream = stores.files.open(blob)
        with stream:
            self.assertEqual((size, stream.read()), (10, b"file bytes"))
        self.assertEqual(sorted(os.listdir(stores.files.directory)), [blob + ".blob"])
        self.assertNotEqual(orphan, blob)

    def test_migration_from_older_schema(self) -> None:
        """A database of an older schema is migrated forward, keeping its data."""
        connection = sqlite3.connect(self.path, isolation_level=None)
        connection.execute("BEGIN")
        for statement in MIGRATIONS[1]:
            connection.execute(statement)
        connection.execute("UPDATE schema_version SET version = 1")
        connection.execute("INSERT INTO messages (queue, position, payload, enqueued_at) VALUES ('q', 1, x'6f6c64', 0)")
        connection.execute("COMMIT")
        connection.close()
        stores = self.reopen()
        self.assertEqual(self.committed(stores.queues.dequeue("q", 1.0)).payload, b"old")
        self.settle(stores.tweets.post("a", "new table", frozenset()))
        stores.close()
        (version,) = sqlite3.connect(self.path).execute("SELECT version FROM schema_version").fetchone()
        self.assertEqual(version, SCHEMA_VERSION)

    def refused(self, reason: str) -> None:
        with open(self.path, "rb") as file:
            before = file.read()
        error = self.assertRaises(StoreError, Database, self.path, self.clock)
        self.assertIn(reason, str(error))
        self.assertNotIn("\n", str(error))
        with open(self.path, "rb") as file:
            self.assertEqual(file.read(), before, "the refused file must be left as it was")

    def test_refuses_newer_schema(self) -> None:
        """A database from a newer msgsvc is refused, untouched."""
        Database(self.path, self.clock).close()
        connection = sqlite3.connect(self.path, isolation_level=None)
        connection.execute("UPDATE schema_version SET version = 99")
        connection.close()
        self.refused("schema version 99, newer than this msgsvc understands")

    def test_refuses_corrupt_file(self) -> None:
        """A file that is not a database is refused, untouched."""
        with open(self.path, "wb") as file:
            file.write(b"definitely not sqlite" * 100)
        self.refused("is not a usable msgsvc database")

    def test_refuses_foreign_database(self) -> None:
        """An SQLite database that is not msgsvc's is refused."""
        sqlite3.connect(self.path).execute("CREATE TABLE other (x)")
        self.refused("not a msgsvc one")

    def test_refuses_database_in_use(self) -> None:
        """A database open in another msgsvc (here: another connection) is refused."""
        first = Database(self.path, self.clock)
        self.addCleanup(first.close)
        self.refused("is in use by another msgsvc process")

    def test_refuses_unreadable_location(self) -> None:
        """A path that cannot be created gives a one-line reason."""
        error = self.assertRaises(StoreError, Database, "/nonexistent/dir/db.sqlite", self.clock)
        self.assertIn("cannot create /nonexistent/dir/db.sqlite", str(error))

    def test_creation_leaves_no_temporary_files(self) -> None:
        """A new database appears complete under its name, with no leftovers."""
        Database(self.path, self.clock).close()
        self.assertEqual(sorted(os.listdir(os.path.dirname(self.path))), ["msgsvc.sqlite"])

    def test_schema_has_no_gaps(self) -> None:
        """Migrations run from 1 to the current version without a gap."""
        self.assertEqual(sorted(MIGRATIONS), list(range(1, SCHEMA_VERSION + 1)))


class DurableEventTests(SynchronousTestCase):
    """Events that announce a change wait for the change to be durable."""

    def test_followers_hear_after_commit(self) -> None:
        """A * TWEET reaches followers only once the message is committed."""
        broker = make_broker(store="sqlite:" + os.path.join(temp_dir(self), "msgsvc.sqlite"))
        self.addCleanup(broker.stores.close)
        follower, author = broker.open_session(FakeClient()), broker.open_session(FakeClient())
        broker.microblog.follow(follower, ALL)
        broker.microblog.post(author, "hello")
        self.assertEqual(follower.client.events, [])
        broker.clock.advance(0)
        self.assertEqual(follower.client.events, [b"* TWEET 1 anonymous hello\r\n"])
