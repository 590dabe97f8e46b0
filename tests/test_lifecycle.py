"""How TCP connections end, over tests.socketlike on both stores: every close releases the connection."""

from __future__ import annotations

import os

from twisted.trial.unittest import TestCase

from msgsvc.dispatch.verbs import build_table
from msgsvc.transports.tcp import GREETING, ConnectionFactory
from tests.helpers import make_broker, temp_dir, temp_path
from tests.lifecycle_helpers import BIG, IDLE
from tests.redis_sync import REDIS_AT_ONCE
from tests.socketlike import SocketHarness


class _Lifecycle:
    """The tests, on the store ``store_url`` names."""

    def store_url(self) -> str:
        raise NotImplementedError

    def setUp(self) -> None:
        self.files = temp_dir(self)
        with open(os.path.join(self.files, "big.bin"), "wb") as file:
            file.write(b"f" * (3 << 20))
        self.broker = make_broker(
            store=self.store_url(), files=self.files, idle_timeout=IDLE, password_cost=1, max_line=100
        )
        self.addCleanup(self.broker.stores.close)
        self.clock = self.broker.clock
        self.factory = ConnectionFactory(self.broker, build_table(), self.clock)
        self.ports = iter(range(41000, 42000))

    def client(self) -> SocketHarness:
        """A connection whose greeting has been read."""
        harness = SocketHarness(self.factory, next(self.ports))
        self.assertEqual(harness.read(), GREETING)
        return harness

    def assertReleased(self, harness: SocketHarness) -> None:
        """The connection is closed and its slot is free."""
        self.assertTrue(harness.released)
        self.assertNotIn(harness.protocol.session, self.broker.sessions)

    # -- a close decided while the producer is paused ---------------------------

    def test_quit_after_large_reply_behind_waiting_command(self) -> None:
        """RECV 0.3, ECHO of 100 KB, QUIT in one write: once read, the connection is released."""
        c = self.client()
        c.send(b"RECV 0.3\nECHO {%d}\n" % BIG + b"x" * BIG + b"\nQUIT\n")
        self.clock.advance(0.3)
        kinds = [(r.kind, r.code or r.text) for r in c.replies()]
        self.assertEqual(kinds, [("ERR", "empty"), ("DATA", "echo"), ("OK", "bye")])
        self.assertReleased(c)

    def test_three_such_clients_do_not_fill_the_server(self) -> None:
        """After three clients quit that way, a fourth is greeted, not refused as full."""
        for _ in range(3):
            c = self.client()
            c.send(b"RECV 0.3\nECHO {%d}\n" % BIG + b"x" * BIG + b"\nQUIT\n")
            self.clock.advance(0.3)
            c.read()
        self.assertEqual(SocketHarness(self.factory, next(self.ports)).read(), GREETING)

    def test_login_recv_quit_with_large_message(self) -> None:
        """LOGIN, RECV of a 100 KB message and QUIT pipelined: the connection is released."""
        author = self.client()
        author.send(b"REGISTER u pw\nSEND {%d}\n" % BIG + b"m" * BIG + b"\nQUIT\n")
        author.read()
        c = self.client()
        c.send(b"LOGIN u pw\nRECV\nQUIT\n")
        self.assertEqual([r.kind for r in c.replies()], ["OK", "DATA", "OK"])
        self.assertReleased(c)

    def test_half_close_after_large_reply(self) -> None:
        """A client that shuts down its write side (nc -N) behind a large reply is answered, then released."""
        c = self.client()
        c.send(b"RECV 0.3\nECHO {%d}\n" % BIG + b"x" * BIG + b"\n")
        c.protocol.readConnectionLost()
        self.clock.advance(0.3)
        self.assertEqual([r.kind for r in c.replies()], ["ERR", "DATA"])
        self.assertReleased(c)

    def test_closing_error_after_large_reply(self) -> None:
        """A line-too-long queued behind a large reply is sent after it, then the connection is released."""
        c = self.client()
        c.send(b"RECV 0.3\nECHO {%d}\n" % BIG + b"x" * BIG + b"\n" + b"y" * 200 + b"\n")
        self.clock.advance(0.3)
        self.assertEqual([r.code or r.kind for r in c.replies()], ["empty", "DATA", "line-too-long"])
        self.assertReleased(c)

    def test_shutdown_after_large_reply(self) -> None:
        """On shutdown a client whose buffer is full still gets * BYE shutdown once it reads, and is released."""
        c = self.client()
        c.send(b"ECHO {%d}\n" % BIG + b"x" * BIG + b"\n")
        self.broker.shutdown()
        self.assertTrue(c.read().endswith(b"\r\n* BYE shutdown\r\n"))
        self.assertReleased(c)

    def test_gen_then_quit(self) -> None:
        """QUIT behind a streamed GEN closes once the body has been read."""
        c = self.client()
        c.send(b"GEN 3000000\nQUIT\n")
        output = c.read()
        self.assertTrue(output.endswith(b"\r\nOK bye\r\n"))
        self.assertEqual(len(output), len(b"DATA 3000000 gen\r\n") + 3000000 + len(b"\r\nOK bye\r\n"))
        self.assertReleased(c)

    def test_get_then_half_close(self) -> None:
        """A streamed GET followed by a half-close: the body is sent whole, then the connection is released."""
        c = self.client()
        c.send(b"GET big.bin\n")
        c.protocol.readConnectionLost()
        self.assertEqual(len(c.read()), len(b"DATA 3145728 big.bin\r\n") + (3 << 20) + 2)
        self.assertReleased(c)

    # -- idle means no progress ---------------------------------------------------

    def test_unread_stream_is_cut_off(self) -> None:
        """A client that never reads its GEN is aborted after --idle-timeout; the body's source is released."""
        c = self.client()
        c.send(b"GEN 100000000\n")
        self.clock.advance(IDLE)
        self.clock.advance(0)
        self.assertReleased(c)
        self.assertFalse(c.protocol.replies.streaming)

    def test_unread_quit_reply_is_cut_off(self) -> None:
        """A client that quits behind a large reply it never reads is aborted after --idle-timeout."""
        c = self.client()
        c.send(b"RECV 0.3\nECHO {%d}\n" % BIG + b"x" * BIG + b"\nQUIT\n")
        self.clock.advance(0.3)
        self.clock.advance(IDLE - 1)
        self.assertFalse(c.released)
        self.clock.advance(1)
        self.clock.advance(0)
        self.assertReleased(c)

    def test_unread_reply_is_cut_off(self) -> None:
        """A client whose buffer is full of a reply it does not read is aborted (no BYE) after --idle-timeout."""
        c = self.client()
        c.send(b"ECHO {%d}\n" % BIG + b"x" * BIG + b"\n")
        self.clock.advance(IDLE)
        self.clock.advance(0)
        self.assertReleased(c)
        self.assertNotIn(b"BYE", c.transport.value())

    def test_reading_client_is_not_idle(self) -> None:
        """A client that keeps reading a long GEN is never idle, however long the GEN takes."""
        c = self.client()
        c.send(b"GEN 100000000\n")
        for _ in range(5):
            self.clock.advance(IDLE - 1)
            c.transport.step()  # reads what is buffered; the server writes the next part
        self.assertFalse(c.released)

    def test_literal_bytes_are_progress(self) -> None:
        """A literal still arriving keeps the connection, though no command completes."""
        c = self.client()
        c.send(b"SEND {100}\n")
        for _ in range(5):
            self.clock.advance(IDLE - 1)
            c.send(b"x" * 10)
        self.assertFalse(c.released)
        c.send(b"x" * 50 + b"\n")
        self.assertEqual(c.replies()[0].text, "1 queued 100 bytes")

    def test_unfinished_literal_is_cut_off(self) -> None:
        """A literal that stops arriving gets * BYE idle-timeout after --idle-timeout."""
        c = self.client()
        c.send(b"SEND {100}\nabc")
        self.clock.advance(IDLE)
        self.assertEqual(c.read(), b"* BYE idle-timeout\r\n")
        self.assertReleased(c)


class MemoryLifecycleTests(_Lifecycle, TestCase):
    """Connection endings on the memory store."""

    def store_url(self) -> str:
        return "memory"


class SqliteLifecycleTests(_Lifecycle, TestCase):
    """Connection endings on the SQLite store (replies wait for the grouped commit)."""

    def store_url(self) -> str:
        return "sqlite:" + temp_path(self, "msgsvc.sqlite")


class RedisLifecycleTests(_Lifecycle, TestCase):
    """Connection endings on the Redis store (on a real redis-server, answering at once)."""

    def store_url(self) -> str:
        return REDIS_AT_ONCE
