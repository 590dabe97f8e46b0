"""An in-memory datagram network that loses, reorders and duplicates, on a Clock."""

from __future__ import annotations

import random
from collections.abc import Callable

from twisted.internet.task import Clock

Deliver = Callable[[bytes], object]


class LossyLink:
    """One direction of a path: each datagram is dropped, delayed by a random amount (so reordered) or doubled."""

    def __init__(
        self,
        clock: Clock,
        deliver: Deliver,
        seed: int,
        loss: float = 0.1,
        duplicate: float = 0.05,
        delay: tuple[float, float] = (0.001, 0.02),
    ) -> None:
        self.clock = clock
        self.deliver = deliver
        self.random = random.Random(seed)
        self.loss = loss
        self.duplicate = duplicate
        self.delay = delay
        self.sent = 0
        self.dropped = 0

    def send(self, datagram: bytes) -> None:
        """Put one datagram on the path."""
        self.sent += 1
        copies = 2 if self.random.random() < self.duplicate else 1
        for _ in range(copies):
            if self.random.random() < self.loss:
                self.dropped += 1
                continue
            self.clock.callLater(self.random.uniform(*self.delay), self.deliver, datagram)


def run_until(clock: Clock, done: Callable[[], bool], limit: float = 600.0, step: float = 0.001) -> None:
    """Advance ``clock`` in small steps until ``done()`` or ``limit`` seconds have passed."""
    elapsed = 0.0
    while not done() and elapsed < limit:
        clock.advance(step)
        elapsed += step
