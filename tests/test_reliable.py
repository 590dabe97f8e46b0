"""At-least-once delivery (RESERVE/ACK/NACK/QSTAT, TTR, dead letters) on both stores, and SQLite durability."""

import os
import sqlite3

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from msgsvc.domain.microblog import ALL
from msgsvc.store import StoreError, open_stores
from msgsvc.store.database import MIGRATIONS, SCHEMA_VERSION, Database
from msgsvc.store.interfaces import Account, Post, Upload
from tests.helpers import FakeClient, TcpHarness, UdpHarness, make_broker, temp_dir

ALICE = ("127.0.0.1", 52001)
BOB = ("127.0.0.1", 52002)


class ReliableDeliveryMixin:
    """The behaviour every store must show; subclasses choose the store."""

    def store_url(self) -> str:
        raise NotImplementedError

    def setUp(self):
        self.url = self.store_url()
        self.broker = make_broker(store=self.url, max_clients=0, ttr=30, max_deliveries=3)
        self.clock = self.broker.clock
        self.ports = iter(range(43000, 44000))

    def client(self) -> TcpHarness:
        harness = TcpHarness(self.broker, next(self.ports))
        harness.output()
        return harness

    def ask(self, harness, line: bytes):
        """Send a command, let the store commit, return its one reply."""
        harness.send(line + b"\n")
        self.clock.advance(0)
        (reply,) = harness.replies()
        return reply

    def qstat(self, harness, queue: bytes = b"") -> dict[str, int]:
        payload = self.ask(harness, b"QSTAT" + (b" @" + queue if queue else b"")).payload.decode()
        return {key: int(value) for key, value in (line.split() for line in payload.splitlines())}

    def test_reserve_then_ack(self):
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

    def test_qstat(self):
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

    def test_ack_needs_the_holder(self):
        """Only the client holding a reservation may ACK or NACK it; others get ERR no-msg."""
        holder, other = self.client(), self.client()
        self.ask(holder, b"SEND x")
        self.ask(holder, b"RESERVE")
        self.assertEqual(self.ask(other, b"ACK 1").code, "no-msg")
        self.assertEqual(self.ask(other, b"NACK 1").code, "no-msg")
        self.assertEqual(self.ask(other, b"ACK 999").code, "no-msg")
        self.assertEqual(self.ask(other, b"ACK x").code, "bad-args")
        self.assertEqual(self.ask(holder, b"ACK 1").kind, "OK")

    def test_nack_puts_back_at_head(self):
        """NACK makes the message ready again, first in line, counted as redelivered."""
        c = self.client()
        self.ask(c, b"SEND a")
        self.ask(c, b"SEND b")
        self.ask(c, b"RESERVE")
        self.ask(c, b"NACK 1")
        again = self.ask(c, b"RESERVE")
        self.assertEqual((again.text, again.payload), ("1", b"a"))
        self.assertEqual(self.qstat(c)["redelivered"], 1)

    def test_nack_with_delay(self):
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

    def test_delayed_message_wakes_waiter(self):
        """A receiver waiting when a delayed message becomes ready gets it."""
        c, waiting = self.client(), self.client()
        self.ask(c, b"SEND a")
        self.ask(c, b"RESERVE")
        self.ask(c, b"NACK 1 2")
        waiting.send(b"RECV 10\n")
        self.clock.advance(2)
        self.clock.advance(0)
        self.assertEqual(waiting.replies()[0].payload, b"a")

    def test_ttr_expiry(self):
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

    def test_waiting_reserve(self):
        """RESERVE with a wait gets the next message sent."""
        c, waiting = self.client(), self.client()
        waiting.send(b"RESERVE 5\n")
        self.ask(c, b"SEND late")
        self.clock.advance(0)
        self.assertEqual(waiting.replies()[0].payload, b"late")
        self.assertEqual(self.qstat(c)["reserved"], 1)

    def test_dead_letter_after_max_deliveries(self):
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

    def test_dead_letter_by_ttr(self):
        """Expired reservations count as deliveries too."""
        c = self.client()
        self.ask(c, b"SEND x")
        for _ in range(3):
            self.ask(c, b"RESERVE")
            self.clock.advance(30)
            self.clock.advance(0)
        self.assertEqual(self.ask(c, b"RECV @default.dead").payload, b"x")

    def test_released_when_holder_disconnects(self):
        """A TCP holder that disconnects releases its reservations at once, in order."""
        holder, other = self.client(), self.client()
        for text in (b"a", b"b", b"c"):
            self.ask(holder, b"SEND " + text)
        self.ask(holder, b"RESERVE")
        self.ask(holder, b"RESERVE")
        holder.disconnect()
        self.clock.advance(0)
        self.assertEqual([self.ask(other, b"RECV").payload for _ in range(3)], [b"a", b"b", b"c"])

    def test_released_when_udp_session_ends(self):
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

    def test_sessionless_udp_reservation(self):
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

    def test_recv_over_udp_too_big_keeps_message(self):
        """A RESERVE that cannot fit a datagram reserves nothing."""
        c = self.client()
        c.send(b"SEND {70000}\n" + b"x" * 70000 + b"\n")
        self.clock.advance(0)
        self.assertEqual(c.replies()[0].text, "1 queued 70000 bytes")
        udp = UdpHarness(self.broker)
        self.assertEqual(udp.command(b"RESERVE", ALICE).code, "too-big")
        self.assertEqual(self.qstat(c)["ready"], 1)


class MemoryReliableTests(ReliableDeliveryMixin, SynchronousTestCase):
    """Reliable delivery on the memory store."""

    def store_url(self) -> str:
        return "memory"


class SqliteReliableTests(ReliableDeliveryMixin, SynchronousTestCase):
    """Reliable delivery on the SQLite store."""

    def store_url(self) -> str:
        return "sqlite:" + os.path.join(temp_dir(self), "msgsvc.sqlite")

    def tearDown(self):
        self.broker.stores.close()

    def test_pipelined_commands_see_earlier_changes(self):
        """Pipelined commands see what earlier ones did, though their replies wait for the commit."""
        c = self.client()
        c.send(b"SEND @jobs job\nRESERVE @jobs\nNACK 1\nRESERVE @jobs\nACK 1\nQSTAT @jobs\n")
        self.assertEqual(c.transport.value(), b"")
        replies = c.replies()
        self.assertEqual([r.kind for r in replies], ["OK", "DATA", "OK", "DATA", "OK", "DATA"])
        self.assertIn(b"acked 1\r\nredelivered 1\r\n", replies[-1].payload)

    def test_reply_after_commit(self):
        """A confirming reply is written only once the grouped transaction has committed."""
        c = self.client()
        c.send(b"SEND a\nSEND b\n")
        self.assertEqual(c.transport.value(), b"")
        self.clock.advance(0)
        self.assertEqual(c.transport.value(), b"OK 1 queued 1 bytes\r\nOK 2 queued 1 bytes\r\n")

    def test_nothing_runs_after_quit_waiting_for_commit(self):
        """A QUIT whose reply waits for the commit still stops the commands sent after it."""
        c = self.client()
        c.send(b"SEND a\nQUIT\nSEND b\n")
        self.clock.advance(0)
        self.assertEqual([r.kind for r in c.replies()], ["OK", "OK"])
        self.assertEqual(self.broker.queues.depths(), [("default", 1)])

    def test_held_replies_keep_their_order(self):
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

    def test_failed_commit_answers_internal_error(self):
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


class SqliteDurabilityTests(SynchronousTestCase):
    """What survives closing and reopening the database, and what is refused at start."""

    def setUp(self):
        self.path = os.path.join(temp_dir(self), "msgsvc.sqlite")
        self.clock = Clock()

    def reopen(self, stores=None):
        if stores is not None:
            stores.close()
        stores = open_stores("sqlite:" + self.path, self.clock)
        self.addCleanup(stores.close)
        return stores

    def settle(self, deferred):
        self.clock.advance(0)
        return self.successResultOf(deferred)

    def committed(self, result):
        """A queue store's result, once the grouped commit has run."""
        self.clock.advance(0)
        return result

    def test_messages_survive_and_reservations_end(self):
        """Queued and reserved messages survive a restart; reserved ones are ready again, in order."""
        stores = self.reopen()
        for n in range(3):
            self.committed(stores.queues.enqueue("q", b"m%d" % n, 1.0))
        self.committed(stores.queues.reserve("q", None, 2.0))
        stores = self.reopen(stores)
        got = [self.committed(stores.queues.dequeue("q", None, 3.0)) for _ in range(3)]
        self.assertEqual([(m.id, m.payload, m.deliveries) for m in got], [(1, b"m0", 1), (2, b"m1", 0), (3, b"m2", 0)])

    def test_message_taken_in_its_turn_is_never_written(self):
        """A message sent and received before the commit leaves no row, and its id is still never reused."""
        stores = self.reopen()
        self.assertEqual(stores.queues.enqueue("q", b"quick", 1.0), 1)
        self.assertEqual(stores.queues.dequeue("q", None, 1.0).payload, b"quick")
        self.clock.advance(0)
        (rows,) = stores.queues._db.read("SELECT COUNT(*) FROM messages").fetchone()
        self.assertEqual(rows, 0)
        stores = self.reopen(stores)
        self.assertEqual(self.committed(stores.queues.enqueue("q", b"next", 1.0)), 2)

    def test_written_messages_come_before_this_turns(self):
        """Messages already written are taken before those sent in the current turn; a reserved one is written."""
        stores = self.reopen()
        self.committed(stores.queues.enqueue("q", b"old", 1.0))
        stores.queues.enqueue("q", b"new", 1.0)
        taken = stores.queues.dequeue("q", None, 1.0)
        reserved = stores.queues.reserve("q", None, 1.0)
        self.assertEqual((taken.payload, reserved.payload, reserved.deliveries), (b"old", b"new", 1))
        stores = self.reopen(stores)
        self.assertEqual(self.committed(stores.queues.dequeue("q", None, 2.0)).payload, b"new")

    def test_ids_unique_across_restarts(self):
        """A message id is never reused, even after the newest message was removed."""
        stores = self.reopen()
        self.committed(stores.queues.enqueue("q", b"a", 1.0))
        self.committed(stores.queues.dequeue("q", None, 1.0))
        stores = self.reopen(stores)
        self.assertEqual(self.committed(stores.queues.enqueue("q", b"b", 1.0)), 2)

    def test_tweets_survive(self):
        """Microblog messages and their hashtag index survive a restart."""
        stores = self.reopen()
        self.settle(stores.tweets.post("ann", "hi #x", frozenset({"x"})))
        stores = self.reopen(stores)
        self.assertEqual(self.successResultOf(stores.tweets.tagged("x", 5))[0].text, "hi #x")
        self.assertEqual(self.settle(stores.tweets.post("bob", "more", frozenset())), 2)

    def test_confirmation_waits_for_commit(self):
        """A change is visible at once but confirmed only after its commit; closing commits what is pending."""
        stores = self.reopen()
        self.assertEqual(stores.queues.enqueue("q", b"a", 1.0), 1)
        self.assertEqual(stores.queues.depths(), [("q", 1)])
        confirmed = stores.durability.confirm("reply")
        self.assertNoResult(confirmed)
        stores.close()
        self.assertEqual(self.successResultOf(confirmed), "reply")
        self.assertEqual(stores.durability.confirm("later"), "later")

    def test_forum_survives(self):
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

    def test_migration_from_older_schema(self):
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
        self.assertEqual(self.committed(stores.queues.dequeue("q", None, 1.0)).payload, b"old")
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

    def test_refuses_newer_schema(self):
        """A database from a newer msgsvc is refused, untouched."""
        Database(self.path, self.clock).close()
        connection = sqlite3.connect(self.path, isolation_level=None)
        connection.execute("UPDATE schema_version SET version = 99")
        connection.close()
        self.refused("schema version 99, newer than this msgsvc understands")

    def test_refuses_corrupt_file(self):
        """A file that is not a database is refused, untouched."""
        with open(self.path, "wb") as file:
            file.write(b"definitely not sqlite" * 100)
        self.refused("is not a usable msgsvc database")

    def test_refuses_foreign_database(self):
        """An SQLite database that is not msgsvc's is refused."""
        sqlite3.connect(self.path).execute("CREATE TABLE other (x)")
        self.refused("not a msgsvc one")

    def test_refuses_database_in_use(self):
        """A database open in another msgsvc (here: another connection) is refused."""
        first = Database(self.path, self.clock)
        self.addCleanup(first.close)
        self.refused("is in use by another msgsvc process")

    def test_refuses_unreadable_location(self):
        """A path that cannot be created gives a one-line reason."""
        error = self.assertRaises(StoreError, Database, "/nonexistent/dir/db.sqlite", self.clock)
        self.assertIn("cannot create /nonexistent/dir/db.sqlite", str(error))

    def test_creation_leaves_no_temporary_files(self):
        """A new database appears complete under its name, with no leftovers."""
        Database(self.path, self.clock).close()
        self.assertEqual(sorted(os.listdir(os.path.dirname(self.path))), ["msgsvc.sqlite"])

    def test_schema_has_no_gaps(self):
        """Migrations run from 1 to the current version without a gap."""
        self.assertEqual(sorted(MIGRATIONS), list(range(1, SCHEMA_VERSION + 1)))


class DurableEventTests(SynchronousTestCase):
    """Events that announce a change wait for the change to be durable."""

    def test_followers_hear_after_commit(self):
        """A * TWEET reaches followers only once the message is committed."""
        broker = make_broker(store="sqlite:" + os.path.join(temp_dir(self), "msgsvc.sqlite"))
        self.addCleanup(broker.stores.close)
        follower, author = broker.open_session(FakeClient()), broker.open_session(FakeClient())
        broker.microblog.follow(follower, ALL)
        broker.microblog.post(author, "hello")
        self.assertEqual(follower.client.events, [])
        broker.clock.advance(0)
        self.assertEqual(follower.client.events, [b"* TWEET 1 anonymous hello\r\n"])
