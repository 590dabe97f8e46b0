"""The forum: accounts (REGISTER, LOGIN, logout) over TCP, its converters and file store, the at-once fixture."""

from __future__ import annotations

import os

from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from msgsvc.domain.forum import Forum, post_number, safe_name
from msgsvc.store.blobs import FileStore
from msgsvc.store.interfaces import NoThread
from tests.accounts_helpers import forum_broker, result_of
from tests.forum_helpers import ForumTestCase, _AtOnce, _OnRedis, answering_at_once
from tests.helpers import OnSqlite, temp_path


class LoginTests(ForumTestCase):
    """REGISTER, LOGIN and logout as a TCP client sees them."""

    def test_register_then_login(self) -> None:
        """REGISTER welcomes; after a disconnect LOGIN welcomes with the spec's text."""
        first = self.client("alice")
        first.disconnect()
        self.assertReply(self.client().command(b"LOGIN alice pw-alice"), "OK", "Welcome to the forum")

    def test_login_errors(self) -> None:
        """Unknown user, wrong password and duplicate REGISTER give no-user, auth and exists."""
        self.client("alice").disconnect()
        other = self.client()
        self.assertReply(other.command(b"LOGIN bob pw"), "ERR", code="no-user")
        self.assertReply(other.command(b"LOGIN alice wrong"), "ERR", "Invalid password", "auth")
        self.assertReply(other.command(b"REGISTER alice pw"), "ERR", code="exists")

    def test_anonymous_reserved(self) -> None:
        """No account may be called anonymous: microblog messages without an author are written so."""
        reply = self.client().command(b"REGISTER Anonymous pw")
        self.assertReply(reply, "ERR", code="bad-args")
        self.assertIn("the user name Anonymous is reserved", reply.text)

    def test_single_login_and_release_on_disconnect(self) -> None:
        """A second LOGIN is ERR in-use until the first client disconnects."""
        first = self.client("alice")
        second = self.client()
        self.assertReply(second.command(b"LOGIN alice pw-alice"), "ERR", "alice has already logged in", "in-use")
        first.disconnect()
        self.assertReply(second.command(b"LOGIN alice pw-alice"), "OK")

    def test_release_after_quit(self) -> None:
        """XIT (QUIT) says bye and, once the connection is gone, the account is free."""
        first = self.client("alice")
        reply = first.command(b"XIT")
        self.assertReply(reply, "OK", "bye")
        self.assertTrue(first.transport.disconnecting)
        first.disconnect()
        self.assertReply(self.client().command(b"LOGIN alice pw-alice"), "OK")

    def test_release_after_idle_timeout(self) -> None:
        """An idle connection gets BYE idle-timeout and its account is logged out."""
        first = self.client("alice")
        self.clock.advance(self.broker.config.idle_timeout)
        self.assertIn(b"* BYE idle-timeout", first.output())
        first.disconnect()
        self.assertReply(self.client().command(b"LOGIN alice pw-alice"), "OK")

    def test_login_sets_chat_name(self) -> None:
        """Logging in names the session after the account."""
        harness = self.client("alice")
        self.assertEqual(harness.protocol.session.name, "alice")
        self.assertIs(self.broker.chat.named("alice"), harness.protocol.session)

    def test_bad_user_names(self) -> None:
        """User names and passwords outside the rules are bad-args."""
        harness = self.client()
        for line in [b"REGISTER a/b pw", b"REGISTER " + b"u" * 33 + b" pw", b"REGISTER ok", b"LOGIN caf\xc3\xa9 pw"]:
            self.assertReply(harness.command(line), "ERR", code="bad-args")

    def test_rate_limited(self) -> None:
        """Repeated failed LOGINs from one network are refused for a while, then allowed again."""
        self.client("alice").disconnect()
        harness = self.client()
        for _ in range(self.broker.config.login_limit):
            self.assertReply(harness.command(b"LOGIN alice nope"), "ERR", "Invalid password", "auth")
        reply = harness.command(b"LOGIN alice pw-alice")
        self.assertReply(reply, "ERR", "too many failed logins from 127.0.0.0/24; try again in 60 seconds", "auth")
        self.clock.advance(60)
        self.assertReply(harness.command(b"LOGIN alice pw-alice"), "OK")

    def test_commands_held_by_a_slow_login(self) -> None:
        """Commands behind a LOGIN still being checked run after it, and their replies come in order."""
        self.client("alice").disconnect()
        self.broker.forum.accounts.run_in_thread = lambda function, *args: deferLater(self.clock, 0.05, function, *args)
        harness = self.client()
        harness.send(b"LOGIN alice pw-alice\nCRT t\nSEND m\nLST\n")
        self.assertEqual(harness.output(), b"")
        self.clock.advance(0.05)
        replies = harness.replies()
        self.assertEqual([r.kind for r in replies], ["OK", "OK", "OK", "DATA"], replies)
        self.assertEqual(replies[3].payload, b"t\r\n")

    def test_pipelined_login(self) -> None:
        """Commands pipelined behind a LOGIN run after it, in order."""
        self.client("alice").disconnect()
        harness = self.client()
        harness.send(b"LOGIN alice pw-alice\nCRT t\nLST\n")
        replies = harness.replies()
        self.assertEqual([r.kind for r in replies], ["OK", "OK", "DATA"])
        self.assertEqual(replies[2].payload, b"t\r\n")


class UnitTests(TestCase):
    """Converters, the file store and the service without a front end."""

    def test_safe_name(self) -> None:
        """safe_name accepts the spec's names and refuses the rest."""
        for good in ("a", "A.b-c_9", "x" * 64, "a..b"):
            self.assertEqual(safe_name(good), good)
        for bad in ("", ".", "..", ".x", "a/b", "a\\b", "x" * 65, "a b", "café"):
            self.assertRaises(ValueError, safe_name, bad)

    def test_post_number(self) -> None:
        """post_number takes whole numbers from 1."""
        self.assertEqual(post_number("12"), 12)
        for bad in ("0", "-3", "", "1e3", "x", "1" * 10):
            self.assertRaises(ValueError, post_number, bad)

    def test_file_store_keys(self) -> None:
        """Blobs are named by server-made keys; anything else is refused."""
        store = FileStore(temp_path(self))
        part = store.begin()
        part.write(b"abc")
        key = store.keep(part)
        size, stream = store.open(key)
        with stream:
            self.assertEqual((size, stream.read()), (3, b"abc"))
        self.assertRaises(ValueError, store.open, "../../etc/passwd")
        store.delete(key)
        store.delete(key)

    def test_sweep(self) -> None:
        """sweep deletes parts an interrupted run left behind and keeps blobs."""
        store = FileStore(temp_path(self))
        kept = store.begin()
        key = store.keep(kept)
        store.begin().close()
        self.assertEqual(store.sweep(), 1)
        self.assertEqual(os.listdir(store.directory), [key + ".blob"])

    def test_sweep_unreferenced_blobs(self) -> None:
        """Given the keys the store refers to, sweep also deletes blobs a crash left unrecorded."""
        store = FileStore(temp_path(self), durable=True)
        kept, orphan = store.keep(store.begin()), store.keep(store.begin())
        self.assertEqual(store.sweep(keep={kept}), 1)
        self.assertEqual(os.listdir(store.directory), [kept + ".blob"])
        self.assertNotEqual(kept, orphan)

    def test_temporary_directory_removed(self) -> None:
        """The memory store's file directory is made on first use and removed by close."""
        store = FileStore(None)
        directory = store.directory
        self.assertTrue(os.path.isdir(directory))
        store.close()
        self.assertFalse(os.path.exists(directory))

    def test_broker_has_forum(self) -> None:
        """The broker exposes the forum, whose is_account the NAME verb uses."""
        broker = forum_broker()
        self.assertIsInstance(broker.forum, Forum)
        self.assertFalse(result_of(broker.forum.is_account("nobody")))


class SqliteLoginTests(OnSqlite, LoginTests):
    """LoginTests on the SQLite store."""


class AtOnceStoreTests(TestCase):
    """The fixture itself: the wrapped stores answer with values and raise their refusals."""

    def test_values_and_raises(self) -> None:
        """A wrapped forum store answers a value, not a Deferred, and raises NoThread."""
        forum = answering_at_once(forum_broker()).stores.forum
        self.assertIs(forum.create_thread("t", "alice"), True)
        self.assertEqual(forum.titles(), ["t"])
        self.assertRaises(NoThread, forum.entries, "nope")


class AtOnceLoginTests(_AtOnce, LoginTests):
    """LoginTests on stores answering at once."""


class RedisLoginTests(_OnRedis, LoginTests):
    """LoginTests on the Redis store."""
