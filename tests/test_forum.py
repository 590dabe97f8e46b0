"""The forum: threads, numbered messages, uploads and downloads, over TCP and UDP."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from msgsvc.domain.broker import Broker
from msgsvc.domain.forum import Forum, post_number, safe_name
from msgsvc.store.blobs import FileStore
from msgsvc.store.interfaces import NoThread
from msgsvc.transports.udp import MAX_DATAGRAM
from tests.helpers import TcpHarness, UdpHarness, run_now, temp_path
from tests.test_accounts import forum_broker, result_of

HOSTILE_NAMES = [b"..", b".", b"/etc", b"a/b", b"a\\b", b".hidden", b"x" * 65, b"caf\xc3\xa9", b"nul\x00"]
BINARY = bytes(range(256)) * 1200 + b"\r\n{3}\r\nEND"
"""307 KB of every byte value, CRLFs and a literal marker: more than one TCP read."""


class ForumTestCase(TestCase):
    """A broker with cheap, in-place password hashing, and TCP clients to drive it."""

    def store_url(self) -> str:
        """The store under test: memory here, SQLite in the Sqlite* subclasses."""
        return "memory"

    def setUp(self) -> None:
        self.clock = Clock()
        self.broker = forum_broker(self.clock, store=self.store_url(), max_clients=0, max_upload=1 << 20)
        self.addCleanup(self.broker.stores.close)
        self.ports = iter(range(40000, 41000))

    def client(self, user: str | None = None) -> TcpHarness:
        """A new TCP connection, registered and logged in as ``user`` if given."""
        harness = TcpHarness(self.broker, port=next(self.ports))
        harness.output()
        if user is not None:
            reply = harness.command(b"REGISTER " + user.encode() + b" pw-" + user.encode())
            self.assertEqual((reply.kind, reply.text), ("OK", "Welcome to the forum"))
        return harness

    def assertReply(self, reply, kind: str, text: str | None = None, code: str | None = None) -> None:
        """The reply has this kind, and this text / error code when given."""
        self.assertEqual(reply.kind, kind, reply)
        if text is not None:
            self.assertEqual(reply.text, text)
        if code is not None:
            self.assertEqual(reply.code, code, reply)

    def files_on_disk(self) -> list[str]:
        """Names in the upload directory."""
        return sorted(os.listdir(self.broker.forum.files.directory))


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


class FileTests(ForumTestCase):
    """UPD and DWN."""

    def setUp(self) -> None:
        super().setUp()
        self.alice = self.client("alice")
        self.alice.command(b"CRT t")

    def test_binary_round_trip(self) -> None:
        """A binary file larger than one TCP read is streamed to disk, listed by RDT and downloaded intact."""
        self.alice.send(b"UPD t data.bin {%d}\r\n" % len(BINARY))
        for start in range(0, len(BINARY), 65536):
            self.alice.send(BINARY[start : start + 65536])
            if start == 65536:
                (part,) = self.files_on_disk()
                self.assertTrue(part.endswith(".part"))
                self.assertEqual(os.path.getsize(os.path.join(self.broker.forum.files.directory, part)), 131072)
        self.alice.send(b"\r\n")
        self.assertReply(self.alice.replies()[0], "OK", f"data.bin uploaded to t ({len(BINARY)} bytes)")
        self.alice.command(b"MSG t after")
        self.assertEqual(self.alice.command(b"RDT t").payload, b"alice uploaded data.bin\r\n1 alice: after\r\n")
        bob = self.client("bob")
        reply = bob.command(b"DWN t data.bin")
        self.assertReply(reply, "DATA", "data.bin")
        self.assertEqual(reply.payload, BINARY)

    def test_download_header(self) -> None:
        """DWN answers DATA <size> <file> and then the bytes."""
        self.alice.command(b"UPD t a.txt {5}\nhello")
        self.alice.send(b"DWN t a.txt\n")
        self.assertEqual(self.alice.output(), b"DATA 5 a.txt\r\nhello\r\n")

    def test_download_flow_control(self) -> None:
        """DWN stops writing the file while the client's transport is paused and resumes after."""
        self.alice.command(b"UPD t big {%d}\n" % len(BINARY) + BINARY)
        transport, protocol = self.alice.transport, self.alice.protocol
        write = transport.write

        def write_then_fill_up(data: bytes) -> None:
            write(data)
            if len(data) > 1000:
                protocol.pauseProducing()  # what a full socket buffer does

        transport.write = write_then_fill_up
        self.alice.send(b"DWN t big\n")
        written = self.alice.output()
        self.assertTrue(written.startswith(b"DATA %d big\r\n" % len(BINARY)))
        self.assertLess(len(written), len(BINARY))
        transport.write = write
        protocol.resumeProducing()
        self.assertEqual(written + self.alice.output(), b"DATA %d big\r\n" % len(BINARY) + BINARY + b"\r\n")

    def test_inline_upload(self) -> None:
        """UPD without a literal uploads the rest of the line."""
        self.assertReply(self.alice.command(b"UPD t note.txt hi there"), "OK")
        self.assertEqual(self.alice.command(b"DWN t note.txt").payload, b"hi there")

    def test_duplicate_file(self) -> None:
        """A file name already uploaded to the thread is exists and the first file stays."""
        self.alice.command(b"UPD t f {3}\nabc")
        self.assertReply(self.alice.command(b"UPD t f {3}\nxyz"), "ERR", code="exists")
        self.assertEqual(self.alice.command(b"DWN t f").payload, b"abc")
        self.assertEqual(len(self.files_on_disk()), 1)

    def test_same_name_other_thread(self) -> None:
        """Threads have their own file names."""
        self.alice.command(b"CRT u")
        self.alice.command(b"UPD t f {1}\n1")
        self.alice.command(b"UPD u f {1}\n2")
        self.assertEqual(self.alice.command(b"DWN u f").payload, b"2")

    def test_upload_to_missing_thread(self) -> None:
        """UPD to a missing thread is no-thread and leaves nothing on disk."""
        self.assertReply(self.alice.command(b"UPD nope f {3}\nabc"), "ERR", code="no-thread")
        self.assertEqual(self.files_on_disk(), [])

    def test_missing_file(self) -> None:
        """DWN of a file never uploaded is no-file."""
        self.assertReply(self.alice.command(b"DWN t f"), "ERR", "f has not been uploaded to t", "no-file")

    def test_hostile_file_names(self) -> None:
        """File names that could leave the store are bad-args and nothing is written."""
        for name in HOSTILE_NAMES:
            self.assertReply(self.alice.command(b"UPD t " + name + b" {3}\nabc"), "ERR", code="bad-args")
            self.assertReply(self.alice.command(b"DWN t " + name), "ERR", code="bad-args")
        self.clock.advance(0)
        self.assertEqual(self.files_on_disk(), [])

    def test_not_logged_in_upload_writes_nothing(self) -> None:
        """A literal sent without a login is read and dropped, never written to disk."""
        stranger = self.client()
        self.assertReply(stranger.command(b"UPD t f {3}\nabc"), "ERR", code="not-logged-in")
        self.assertEqual(self.files_on_disk(), [])

    def test_too_big(self) -> None:
        """A literal over --max-upload is ERR too-big and the connection closes."""
        reply = self.alice.command(b"UPD t f {%d}" % ((1 << 20) + 1))
        self.assertReply(reply, "ERR", code="too-big")
        self.assertTrue(self.alice.transport.disconnecting)

    def test_inline_too_big(self) -> None:
        """An inline upload over --max-upload is too-big."""
        broker = forum_broker(max_upload=4)
        self.addCleanup(broker.forum.files.close)
        harness = TcpHarness(broker)
        harness.output()
        harness.command(b"REGISTER a pw")
        harness.command(b"CRT t")
        self.assertReply(harness.command(b"UPD t f 12345"), "ERR", code="too-big")
        self.assertReply(harness.command(b"UPD t f 1234"), "OK")

    def test_disconnect_mid_upload(self) -> None:
        """A client that leaves during an upload leaves no file behind."""
        self.alice.send(b"UPD t f {100}\n" + b"x" * 50)
        self.assertEqual(len(self.files_on_disk()), 1)
        self.alice.disconnect()
        self.assertEqual(self.files_on_disk(), [])

    def test_unused_literal_removed(self) -> None:
        """A streamed literal whose command is refused before the handler runs is deleted next turn."""
        self.assertReply(self.alice.command(b"UPD t {3}\nabc"), "ERR", code="bad-args")
        self.clock.advance(0)
        self.assertEqual(self.files_on_disk(), [])

    def test_empty_file(self) -> None:
        """A 0-byte upload is allowed and downloads as DATA 0."""
        self.assertReply(self.alice.command(b"UPD t empty {0}"), "OK")
        self.alice.send(b"DWN t empty\n")
        self.assertEqual(self.alice.output(), b"DATA 0 empty\r\n\r\n")

    def test_file_store_cannot_keep(self) -> None:
        """A file store failing to keep an upload is ERR internal, logged once, with nothing left behind."""

        def failing_keep(part: object) -> str:
            raise OSError("disk full")

        self.patch(self.broker.forum.files, "keep", failing_keep)
        self.assertEqual(
            (self.alice.command(b"UPD t f {3}\nabc").code, self.alice.command(b"PING").text), ("internal", "PONG")
        )
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertEqual(self.files_on_disk(), [])
        self.assertEqual(self.alice.command(b"RDT t").payload, b"")

    def test_file_store_cannot_begin(self) -> None:
        """A file store unable to take a streamed upload: the literal is read, the UPD is ERR internal, logged once."""

        def failing_begin() -> object:
            raise OSError("no space")

        self.patch(self.broker.forum.files, "begin", failing_begin)
        reply = self.alice.command(b"UPD t f {3}\nabc")
        self.assertEqual((reply.code, reply.text), ("internal", "internal error; it has been logged"))
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertEqual(self.alice.command(b"PING").text, "PONG")


class UdpTests(ForumTestCase):
    """The forum over UDP sessions."""

    def setUp(self) -> None:
        super().setUp()
        self.udp = UdpHarness(self.broker, prefix=b"&forumkey ")

    def test_forum_over_udp(self) -> None:
        """REGISTER starts a session in which the forum verbs work, uploads and downloads included."""
        self.assertReply(self.udp.command(b"REGISTER alice pw"), "OK", "Welcome to the forum")
        self.assertEqual(len(self.broker.sessions), 1)
        self.assertReply(self.udp.command(b"CRT t"), "OK")
        self.assertReply(self.udp.command(b"MSG t hi"), "OK", "1")
        self.assertReply(self.udp.command(b"UPD t b.bin {4}\n\x00\r\n\xff"), "OK")
        self.assertEqual(self.udp.command(b"RDT t").payload, b"1 alice: hi\r\nalice uploaded b.bin\r\n")
        self.assertEqual(self.udp.command(b"DWN t b.bin").payload, b"\x00\r\n\xff")

    def test_download_too_big_for_datagram(self) -> None:
        """A file that does not fit one datagram is ERR too-big over UDP (and fine over TCP)."""
        tcp = self.client("alice")
        tcp.command(b"CRT t")
        tcp.command(b"UPD t big {%d}\n" % (MAX_DATAGRAM + 1) + b"x" * (MAX_DATAGRAM + 1))
        self.udp.command(b"REGISTER bob pw")
        self.assertReply(self.udp.command(b"DWN t big"), "ERR", code="too-big")

    def test_failed_login_ends_session(self) -> None:
        """A failed LOGIN over UDP does not leave a session behind."""
        self.assertReply(self.udp.command(b"LOGIN nobody pw"), "ERR", code="no-user")
        self.assertEqual(self.broker.sessions, [])

    def test_forum_without_session(self) -> None:
        """A forum verb from an address without a session is not-logged-in."""
        self.assertReply(self.udp.command(b"LST"), "ERR", code="not-logged-in")

    def test_quit_logs_out(self) -> None:
        """QUIT ends the UDP session and frees the account."""
        self.udp.command(b"REGISTER alice pw")
        self.assertReply(self.udp.command(b"QUIT"), "OK", "bye")
        self.assertReply(self.client().command(b"LOGIN alice pw"), "OK")

    def test_idle_timeout_logs_out(self) -> None:
        """An idle UDP session gets BYE idle-timeout and its account is free again."""
        self.udp.command(b"REGISTER alice pw")
        self.clock.advance(self.broker.config.idle_timeout)
        self.assertIn(b"* BYE idle-timeout\r\n", self.udp.datagrams())
        self.assertReply(self.client().command(b"LOGIN alice pw"), "OK")

    def test_udp_and_tcp_single_login(self) -> None:
        """An account logged in over UDP is in-use for a TCP client."""
        self.udp.command(b"REGISTER alice pw")
        self.assertReply(self.client().command(b"LOGIN alice pw"), "ERR", "alice has already logged in", "in-use")


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


class _OnSqlite:
    """Runs a forum test class on the SQLite store."""

    def store_url(self) -> str:
        return "sqlite:" + temp_path(self, "msgsvc.sqlite")


class SqliteLoginTests(_OnSqlite, LoginTests):
    """LoginTests on the SQLite store."""


class SqliteThreadTests(_OnSqlite, ThreadTests):
    """ThreadTests on the SQLite store."""


class SqliteFileTests(_OnSqlite, FileTests):
    """FileTests on the SQLite store."""


class AnswersAtOnce:
    """Wraps a store so that every operation answers with its value, or raises, as a synchronous store may."""

    def __init__(self, store: object) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Callable[..., object]:
        operation = getattr(self._store, name)

        def at_once(*args: object) -> object:
            answer = operation(*args)
            if not isinstance(answer, Deferred):
                return answer
            outcome = result_of(answer)
            if isinstance(outcome, Failure):
                outcome.raiseException()
            return outcome

        return at_once


def answering_at_once(broker: Broker) -> Broker:
    """A new broker over ``broker``'s stores, its tweet, account and forum stores answering at once."""
    stores = broker.stores
    at_once = replace(
        stores,
        tweets=AnswersAtOnce(stores.tweets),
        accounts=AnswersAtOnce(stores.accounts),
        forum=AnswersAtOnce(stores.forum),
    )
    return Broker(at_once, broker.config, broker.clock, run_now)


class _AtOnce:
    """Runs a forum test class on stores that answer at once (values, and exceptions raised)."""

    def setUp(self) -> None:
        super().setUp()
        self.broker = answering_at_once(self.broker)


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


class AtOnceThreadTests(_AtOnce, ThreadTests):
    """ThreadTests on stores answering at once."""


class AtOnceFileTests(_AtOnce, FileTests):
    """FileTests on stores answering at once."""
