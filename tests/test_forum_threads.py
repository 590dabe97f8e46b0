"""Forum threads and numbered messages over TCP: CRT, MSG, DLT, EDT, LST, RDT and RMV, on every store."""

from __future__ import annotations

from tests.forum_helpers import HOSTILE_NAMES, ForumTestCase, _AtOnce, _OnRedis
from tests.helpers import OnSqlite


class ThreadTests(ForumTestCase):
    """CRT, MSG, DLT, EDT, LST, RDT and RMV."""

    def test_login_required(self) -> None:
        """Every forum verb needs a login."""
        harness = self.client()
        for line in [b"CRT t", b"MSG t hi", b"DLT t 1", b"EDT t 1 x", b"LST", b"RDT t", b"UPD t f x", b"DWN t f"]:
            self.assertReply(harness.command(line), "ERR", code="not-logged-in")
        self.assertReply(harness.command(b"RMV t"), "ERR", code="not-logged-in")

    def test_create_and_list(self) -> None:
        """CRT creates threads that LST lists oldest first; a taken title is exists."""
        harness = self.client("alice")
        self.assertReply(harness.command(b"LST"), "DATA", "threads")
        self.assertReply(harness.command(b"CRT zeta"), "OK", "Thread zeta created")
        self.assertReply(harness.command(b"CRT alpha"), "OK")
        self.assertReply(harness.command(b"CRT zeta"), "ERR", code="exists")
        self.assertEqual(harness.command(b"LST").payload, b"zeta\r\nalpha\r\n")

    def test_hostile_titles(self) -> None:
        """Titles outside 1-64 of A-Za-z0-9_.- or starting with a dot are bad-args."""
        harness = self.client("alice")
        for title in HOSTILE_NAMES:
            for verb in (b"CRT ", b"RDT ", b"RMV ", b"MSG "):
                self.assertReply(harness.command(verb + title + b" x"), "ERR", code="bad-args")
        self.assertReply(harness.command(b"CRT " + b"a" * 64), "OK")
        self.assertReply(harness.command(b"CRT a.b-c_D9"), "OK")

    def test_post_and_read(self) -> None:
        """MSG answers OK <n>; RDT lists '<n> <user>: <text>' with the text verbatim."""
        alice, bob = self.client("alice"), self.client("bob")
        alice.command(b"CRT t")
        self.assertReply(alice.command(b"MSG t hello  world "), "OK", "1")
        self.assertReply(bob.command(b"MSG t caf\xc3\xa9"), "OK", "2")
        reply = bob.command(b"RDT t")
        self.assertReply(reply, "DATA", "t")
        self.assertEqual(reply.payload, "1 alice: hello  world \r\n2 bob: café\r\n".encode())

    def test_bad_texts(self) -> None:
        """Empty, multi-line, control-character, non-UTF-8 and over-long texts are refused."""
        harness = self.client("alice")
        harness.command(b"CRT t")
        self.assertReply(harness.command(b"MSG t"), "ERR", code="bad-args")
        self.assertReply(harness.command(b"MSG t {3}\na\nb"), "ERR", code="bad-args")
        self.assertReply(harness.command(b"MSG t a\rb"), "ERR", code="bad-args")
        self.assertReply(harness.command(b"MSG t \x1b[31m"), "ERR", code="bad-args")
        self.assertReply(harness.command(b"MSG t \xff"), "ERR", code="bad-args")
        self.assertReply(harness.command(b"MSG t {9000}\n" + b"x" * 9000), "ERR", code="too-long")
        self.assertEqual(harness.command(b"RDT t").payload, b"")

    def test_missing_thread(self) -> None:
        """Verbs naming a thread that does not exist are no-thread."""
        harness = self.client("alice")
        for line in [b"MSG t hi", b"DLT t 1", b"EDT t 1 x", b"RDT t", b"UPD t f x", b"DWN t f", b"RMV t"]:
            self.assertReply(harness.command(line), "ERR", code="no-thread")

    def test_delete_renumbers(self) -> None:
        """Deleting a message renumbers the later ones."""
        harness = self.client("alice")
        harness.command(b"CRT t")
        for text in (b"a", b"b", b"c"):
            harness.command(b"MSG t " + text)
        self.assertReply(harness.command(b"DLT t 1"), "OK", "Message 1 deleted")
        self.assertEqual(harness.command(b"RDT t").payload, b"1 alice: b\r\n2 alice: c\r\n")
        self.assertReply(harness.command(b"MSG t d"), "OK", "3")
        self.assertReply(harness.command(b"DLT t 3"), "OK")
        self.assertEqual(harness.command(b"RDT t").payload, b"1 alice: b\r\n2 alice: c\r\n")

    def test_edit(self) -> None:
        """EDT replaces the text of your own message, in place."""
        harness = self.client("alice")
        harness.command(b"CRT t")
        harness.command(b"MSG t one")
        harness.command(b"MSG t two")
        self.assertReply(harness.command(b"EDT t 1 uno"), "OK", "Message 1 edited")
        self.assertEqual(harness.command(b"RDT t").payload, b"1 alice: uno\r\n2 alice: two\r\n")

    def test_ownership(self) -> None:
        """Only the author edits or deletes a message; only the creator removes a thread."""
        alice, bob = self.client("alice"), self.client("bob")
        alice.command(b"CRT t")
        alice.command(b"MSG t mine")
        self.assertReply(bob.command(b"EDT t 1 hacked"), "ERR", code="not-owner")
        self.assertReply(bob.command(b"DLT t 1"), "ERR", code="not-owner")
        self.assertReply(bob.command(b"RMV t"), "ERR", code="not-owner")
        self.assertEqual(bob.command(b"RDT t").payload, b"1 alice: mine\r\n")

    def test_bad_numbers(self) -> None:
        """Non-numbers and 0 are bad-args; numbers past the end are no-msg."""
        harness = self.client("alice")
        harness.command(b"CRT t")
        harness.command(b"MSG t hi")
        for number in (b"0", b"-1", b"abc", b"1.5", b"9" * 30, b""):
            self.assertReply(harness.command(b"DLT t " + number), "ERR", code="bad-args")
        self.assertReply(harness.command(b"DLT t 2"), "ERR", "Thread t has no message 2", "no-msg")
        self.assertReply(harness.command(b"EDT t 99 x"), "ERR", code="no-msg")

    def test_remove_thread(self) -> None:
        """RMV removes the thread with its messages and uploaded files."""
        harness = self.client("alice")
        harness.command(b"CRT t")
        harness.command(b"MSG t hi")
        harness.command(b"UPD t f.bin {3}\nabc")
        self.assertEqual(len(self.files_on_disk()), 1)
        self.assertReply(harness.command(b"RMV t"), "OK", "Thread t removed")
        self.assertEqual(self.files_on_disk(), [])
        self.assertEqual(harness.command(b"LST").payload, b"")
        self.assertReply(harness.command(b"RDT t"), "ERR", code="no-thread")
        self.assertReply(harness.command(b"CRT t"), "OK")
        self.assertEqual(harness.command(b"RDT t").payload, b"")


class SqliteThreadTests(OnSqlite, ThreadTests):
    """ThreadTests on the SQLite store."""


class AtOnceThreadTests(_AtOnce, ThreadTests):
    """ThreadTests on stores answering at once."""


class RedisThreadTests(_OnRedis, ThreadTests):
    """ThreadTests on the Redis store."""
