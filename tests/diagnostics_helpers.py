"""Shared helpers for the diagnostics tests: the reference GEN pattern, a socket that fills on each write."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from tests.helpers import TcpHarness


def reference(offset: int, size: int) -> bytes:
    """The GEN pattern computed the obvious way: byte i is chr(33 + i % 94)."""
    return bytes(33 + i % 94 for i in range(offset, offset + size))


def fill_on_write(testcase: TestCase, client: TcpHarness) -> None:
    """Make the client's socket buffer full after every write, until the next resumeProducing."""
    write = client.transport.write

    def write_then_fill(data: bytes) -> None:
        write(data)
        client.protocol.pauseProducing()

    testcase.patch(client.transport, "write", write_then_fill)
