# -*- test-case-name: tests.test_client -*-
"""A UDP client's requests in flight, and when each is sent again.

A request is sent again after a few measured round trips, then after twice
as long each time, up to the client's timeout (plus the command's own wait),
and fails once (retries + 1) full timeouts have passed without a reply: a
lost datagram costs milliseconds on a fast path, and a slow server still
gets as long as before. The server's retry cache makes every resend safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall

from msgsvc.client.replies import Reply
from msgsvc.protocol.reliable import BlockReceiver, BlockSender

MIN_RETRY = 0.05
"""The shortest wait before a request is sent again."""


@dataclass
class Attempt:
    """One request waiting for its reply (or its transfer)."""

    result: Deferred[Reply]
    datagram: bytes
    timeout: float
    """The longest wait between two sends (the client's timeout, plus the command's own wait)."""
    deadline: float
    """When the command fails if no reply came: as long as (retries + 1) full timeouts."""
    delay: float
    """The wait after the next send: a few round trips at first, doubling up to ``timeout``."""
    first_sent: float = -1.0
    resent: bool = False
    timer: IDelayedCall | None = None
    payload: bytes | None = None
    """A literal going up as a transfer once the server is ready for it."""
    upload: BlockSender | None = None
    download: BlockReceiver | None = None
    parts: list[bytes] = field(default_factory=list)


class RetryPacing:
    """The round trip a client has measured, and the waits it sets for its requests."""

    def __init__(self, timeout: float, retries: int) -> None:
        self.timeout = timeout
        self.retries = retries
        self.round_trip: float | None = None
        """Seconds a request takes to be answered, smoothed (RFC 6298's weight); None until measured."""

    def attempt(self, result: Deferred[Reply], datagram: bytes, wait: float, now: float) -> Attempt:
        """A new request, to fail at ``now`` plus (retries + 1) full timeouts."""
        longest = self.timeout + wait
        return Attempt(result, datagram, longest, now + longest * (self.retries + 1), self.first_delay(longest))

    def first_delay(self, longest: float) -> float:
        """The wait after the first send: four round trips once one is measured, ``longest`` at most."""
        return longest if self.round_trip is None else min(longest, max(MIN_RETRY, 4 * self.round_trip))

    def measured(self, sample: float) -> None:
        """A reply to a request sent once (Karn's rule: a resent one says nothing of the path)."""
        self.round_trip = sample if self.round_trip is None else 0.875 * self.round_trip + 0.125 * sample
