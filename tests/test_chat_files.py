"""Chat files: LIST and GET, path escapes, GET over UDP, and a client that does not read."""

import os

from twisted.internet.testing import StringTransport

from msgsvc.transports.tcp import CHUNK
from tests.chat_helpers import ChatCase
from tests.helpers import UdpHarness, temp_dir


class FileTests(ChatCase):
    """LIST and GET."""

    def write(self, name: str, data: bytes) -> str:
        path = os.path.join(self.files, name)
        with open(path, "wb") as file:
            file.write(data)
        return path

    def test_list_only_servable(self):
        """LIST shows regular files directly inside --files, sorted, with sizes; nothing else."""
        self.write("b.txt", b"12345")
        self.write("a.bin", b"")
        self.write(".hidden", b"x")
        self.write("with space", b"x")
        os.mkdir(os.path.join(self.files, "subdir"))
        outside = os.path.join(temp_dir(self), "outside")
        with open(outside, "wb") as file:
            file.write(b"secret")
        os.symlink(outside, os.path.join(self.files, "escape"))
        os.symlink("b.txt", os.path.join(self.files, "alias"))
        self.assertEqual(self.client().command(b"LIST").payload, b"a.bin 0\r\nalias 5\r\nb.txt 5\r\n")

    def test_get(self):
        """GET answers DATA <size> <file> and the exact bytes."""
        self.write("test.txt", b"Line 0\nLine 1\n")
        reply = self.client().command(b"GET test.txt")
        self.assertEqual((reply.kind, reply.text, reply.payload), ("DATA", "test.txt", b"Line 0\nLine 1\n"))

    def test_get_large_binary(self):
        """A multi-megabyte binary file arrives intact."""
        data = os.urandom(5 * 1024 * 1024 + 3)
        self.write("big.bin", data)
        self.assertEqual(self.client().command(b"GET big.bin").payload, data)

    def test_path_escapes_refused(self):
        """Every attempt to leave --files, and every non-file, gets ERR no-file File path is invalid."""
        os.mkdir(os.path.join(self.files, "subdir"))
        self.write("subdir/inner", b"x")
        outside = os.path.join(temp_dir(self), "outside")
        with open(outside, "wb") as file:
            file.write(b"secret")
        os.symlink(outside, os.path.join(self.files, "escape"))
        os.symlink("/etc", os.path.join(self.files, "etc"))
        c = self.client()
        for name in (
            b"..",
            b"../" + os.path.basename(outside).encode(),
            b"/etc/passwd",
            b"subdir",
            b"subdir/inner",
            b"..\\x",
            b"escape",
            b"etc",
            b"missing",
            b".",
            b"%2e%2e",
            b"etc/passwd",
            b"{2}\n..",
        ):
            reply = c.command(b"GET " + name)
            self.assertEqual((reply.code, reply.text), ("no-file", "File path is invalid"), name)
        self.assertEqual(c.command(b"GET \xff").code, "bad-args")

    def test_get_needs_a_name(self):
        """GET without a file is bad-args."""
        self.assertEqual(self.client().command(b"GET").code, "bad-args")

    def test_get_over_udp(self):
        """Over UDP, GET answers in one datagram when the file fits, ERR too-big otherwise."""
        self.write("small", b"tiny")
        self.write("large", b"x" * 70000)
        udp = UdpHarness(self.broker)
        self.assertEqual(udp.command(b"GET small").payload, b"tiny")
        self.assertEqual(udp.command(b"GET large").code, "too-big")

    def test_get_to_non_reader_bounded(self):
        """A client that does not read makes the server hold at most one chunk beyond the socket buffer."""
        self.write("big.bin", b"z" * (20 * 1024 * 1024))
        transport = _FillingTransport(limit=64 * 1024)
        harness = self.client()
        harness.transport = transport
        harness.protocol.makeConnection(transport)  # rewire onto a transport that fills up
        transport.clear()
        harness.send(b"GET big.bin\n")
        self.assertTrue(harness.protocol.replies.output_paused)
        self.assertLessEqual(len(transport.value()), 64 * 1024 + CHUNK + 100)
        total = len(transport.value())
        while harness.protocol.replies.output_paused:
            transport.clear()
            harness.protocol.resumeProducing()
            total += len(transport.value())
        self.assertEqual(total, len(b"DATA 20971520 big.bin\r\n") + 20 * 1024 * 1024 + 2)


class _FillingTransport(StringTransport):
    """A transport that, like a real socket, pauses its producer when its buffer passes ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def write(self, data: bytes) -> None:
        super().write(data)
        if len(self.value()) > self.limit and self.producer is not None:
            self.producer.pauseProducing()
