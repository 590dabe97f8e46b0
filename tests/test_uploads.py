"""UPD pipelined behind a LOGIN or REGISTER still being checked: the streamed file waits for its command."""

from __future__ import annotations

from twisted.internet.task import deferLater

from tests.helpers import OnSqlite, TcpHarness, UdpHarness
from tests.test_forum import ForumTestCase, _OnRedis

CHECK = 0.05
"""Seconds each password check (or hash) takes in these tests."""


class HeldUploadTests(ForumTestCase):
    """A thread t by alice, and password checks that take CHECK seconds of the test clock."""

    def setUp(self) -> None:
        super().setUp()
        owner = self.client("alice")
        owner.command(b"CRT t")
        owner.disconnect()
        self.broker.forum.accounts.run_in_thread = lambda function, *args: deferLater(
            self.clock, CHECK, function, *args
        )

    def summary(self, harness: TcpHarness) -> list[tuple[str, str]]:
        """(kind, text) of the replies since the last call."""
        return [(reply.kind, reply.text) for reply in harness.replies()]

    def test_upload_behind_slow_login(self) -> None:
        """LOGIN then UPD with a literal in one write: the upload waits for the login and is stored."""
        harness = self.client()
        harness.send(b"LOGIN alice pw-alice\r\nUPD t f.txt {5}\r\nhello\r\n")
        self.assertEqual(harness.output(), b"")
        self.clock.advance(CHECK)
        self.assertEqual(
            self.summary(harness), [("OK", "Welcome to the forum"), ("OK", "f.txt uploaded to t (5 bytes)")]
        )
        self.assertEqual(harness.command(b"DWN t f.txt").payload, b"hello")
        self.assertEqual([name[-5:] for name in self.files_on_disk()], [".blob"])

    def test_upload_behind_slow_register(self) -> None:
        """REGISTER then UPD in one write: the upload waits for the new account."""
        harness = self.client()
        harness.send(b"REGISTER bob pw\nUPD t b.bin {3}\nabc")
        self.clock.advance(CHECK)
        self.assertEqual([kind for kind, _ in self.summary(harness)], ["OK", "OK"])
        self.assertEqual(harness.command(b"RDT t").payload, b"bob uploaded b.bin\r\n")

    def test_upload_behind_two_logins(self) -> None:
        """An upload held behind a failed LOGIN and then a good one waits as long as both take."""
        harness = self.client()
        harness.send(b"LOGIN alice wrong\nLOGIN alice pw-alice\nUPD t f.txt {5}\nhello\n")
        self.clock.advance(CHECK)
        self.assertEqual(self.summary(harness), [("ERR", "Invalid password")])
        self.assertEqual([name[-5:] for name in self.files_on_disk()], [".part"])
        self.clock.advance(CHECK)
        self.assertEqual([kind for kind, _ in self.summary(harness)], ["OK", "OK"])
        self.assertEqual(harness.command(b"DWN t f.txt").payload, b"hello")

    def test_client_leaves_while_held(self) -> None:
        """A client that leaves while its upload waits behind its LOGIN leaves no file behind, at once."""
        harness = self.client()
        harness.send(b"LOGIN alice pw-alice\nUPD t f.txt {5}\nhello\n")
        self.assertEqual(len(self.files_on_disk()), 1)
        harness.disconnect()
        self.assertEqual(self.files_on_disk(), [])
        self.clock.advance(CHECK)
        self.assertEqual(self.files_on_disk(), [])
        self.assertEqual(self.broker.forum.pending_uploads.waiting(harness.protocol.session), 0)
        later = self.client()
        later.send(b"LOGIN alice pw-alice\nRDT t\n")
        self.clock.advance(CHECK)
        self.assertEqual([(r.kind, r.text) for r in later.replies()], [("OK", "Welcome to the forum"), ("DATA", "t")])

    def test_refused_held_upload_removed(self) -> None:
        """A held UPD refused before its handler runs (bad arguments) has its file deleted once it is refused."""
        harness = self.client()
        harness.send(b"LOGIN alice pw-alice\nUPD t {5}\nhello\n")
        self.clock.advance(CHECK)
        self.assertEqual([kind for kind, _ in self.summary(harness)], ["OK", "ERR"])
        self.clock.advance(0)
        self.assertEqual(self.files_on_disk(), [])

    def test_failed_login_upload_removed(self) -> None:
        """An upload held behind a failed LOGIN is not-logged-in and its file is deleted."""
        harness = self.client()
        harness.send(b"LOGIN alice wrong\nUPD t f.txt {5}\nhello\n")
        self.clock.advance(CHECK)
        replies = harness.replies()
        self.assertEqual([(r.kind, r.code) for r in replies], [("ERR", "auth"), ("ERR", "not-logged-in")])
        self.clock.advance(0)
        self.assertEqual(self.files_on_disk(), [])

    def test_over_udp(self) -> None:
        """An UPD datagram that arrives while the session's LOGIN is being checked waits for it."""
        udp = UdpHarness(self.broker, prefix=b"&forumkey ")
        udp.send(b"LOGIN alice pw-alice")
        udp.send(b"UPD t u.bin {3}\nabc")
        self.assertEqual(udp.datagrams(), [])
        self.clock.advance(CHECK)
        self.assertEqual([reply.kind for reply in udp.received()], ["OK", "OK"])
        self.assertEqual(udp.command(b"DWN t u.bin").payload, b"abc")


class SqliteHeldUploadTests(OnSqlite, HeldUploadTests):
    """HeldUploadTests on the SQLite store."""


class RedisHeldUploadTests(_OnRedis, HeldUploadTests):
    """HeldUploadTests on the Redis store."""
