"""Forum uploads and downloads over TCP: UPD and DWN, streaming, limits and failures, on every store."""

from __future__ import annotations

import os

from tests.accounts_helpers import forum_broker
from tests.forum_helpers import HOSTILE_NAMES, ForumTestCase, _AtOnce, _OnRedis
from tests.helpers import OnSqlite, TcpHarness

BINARY = bytes(range(256)) * 1200 + b"\r\n{3}\r\nEND"
"""307 KB of every byte value, CRLFs and a literal marker: more than one TCP read."""


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


class SqliteFileTests(OnSqlite, FileTests):
    """FileTests on the SQLite store."""


class AtOnceFileTests(_AtOnce, FileTests):
    """FileTests on stores answering at once."""


class RedisFileTests(_OnRedis, FileTests):
    """FileTests on the Redis store."""
