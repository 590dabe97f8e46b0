# -*- test-case-name: tests.test_udp_retries -*-
"""The UDP retry cache: replies to tagged requests, kept a while so a retried datagram is not run twice."""

from __future__ import annotations

from collections import OrderedDict

from twisted.internet.interfaces import IReactorTime

REPLY_CACHE_SECONDS = 60.0
REPLY_CACHE_BYTES = 16 << 20
CACHE_ENTRY_OVERHEAD = 256
"""Bytes an entry costs besides its reply (key, tuple, dict slot), counted against REPLY_CACHE_BYTES."""


class ReplyCache:
    """Replies to tagged requests by (address, tag), so a retried datagram is answered, not re-run."""

    def __init__(self, clock: IReactorTime, seconds: float = REPLY_CACHE_SECONDS, max_bytes: int = REPLY_CACHE_BYTES):
        self._clock = clock
        self._seconds = seconds
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[tuple, tuple[float, bytes | None]] = OrderedDict()

    def lookup(self, key: tuple) -> tuple[bool, bytes | None]:
        """(seen, reply): reply is None while the first request is still running."""
        self._expire()
        entry = self._entries.get(key)
        return (False, None) if entry is None else (True, entry[1])

    def begin(self, key: tuple) -> None:
        """A tagged request starts running."""
        self._entries[key] = (self._clock.seconds(), None)

    def store(self, key: tuple, reply: bytes) -> None:
        """Its reply, to send again to a retry."""
        entry = self._entries.get(key)
        if entry is None:
            return
        self._entries[key] = (entry[0], reply)
        self._bytes += len(reply) + CACHE_ENTRY_OVERHEAD
        while self._bytes > self._max_bytes:
            self._drop_oldest()

    def _expire(self) -> None:
        deadline = self._clock.seconds() - self._seconds
        while self._entries and next(iter(self._entries.values()))[0] <= deadline:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, (_, reply) = self._entries.popitem(last=False)
        if reply is not None:
            self._bytes -= len(reply) + CACHE_ENTRY_OVERHEAD
