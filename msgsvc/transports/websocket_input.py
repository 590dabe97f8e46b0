# -*- test-case-name: tests.test_websocket -*-
"""What a WebSocket client may send before a message completes, and the connection it arrives on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from msgsvc.config import Config

INPUT_SLACK = 64 * 1024
"""Bytes beyond the largest command a client may send before a message completes: frame headers,
control frames, and the start of the next message read with the end of one."""


def input_limit(config: Config) -> int:
    """Bytes a WebSocket client may send without completing a message: its largest command, and slack."""
    return config.max_line + max(config.max_message, config.max_upload) + INPUT_SLACK


@runtime_checkable
class RawTransport(Protocol):
    """What a WebSocket client uses of the connection under it (TCP or TLS): reading paused, dropping it."""

    def pauseProducing(self) -> None: ...

    def resumeProducing(self) -> None: ...

    def abortConnection(self) -> None: ...


class InputBound:
    """Calls ``exceeded`` once a client has sent more than ``limit`` bytes without completing a message.

    Twisted gathers a message's frames in memory whatever their size, so the
    bytes are counted where they arrive: the upgraded HTTP channel hands them
    to the WebSocket through its ``dataReceived``, which :meth:`watch` wraps.
    The count is checked after each read, so it may run over by one read (64 KiB).
    """

    def __init__(self, limit: int, exceeded: Callable[[], None]) -> None:
        self.limit = limit
        self.unframed = 0
        """Bytes received since a message last completed."""
        self._exceeded = exceeded

    def watch(self, channel: Any) -> None:
        """Count what the upgraded ``channel`` receives from now on."""
        deliver = channel.dataReceived

        def received(data: bytes) -> None:
            self.unframed += len(data)
            deliver(data)  # a message completed in it resets the count
            if self.unframed > self.limit:
                self._exceeded()

        channel.dataReceived = received

    def completed(self) -> None:
        """A message is complete: count afresh."""
        self.unframed = 0
