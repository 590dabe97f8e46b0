"""A queue store that answers later, as a networked one would, and brokers over each kind of queue store."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from zope.interface import implementer

from msgsvc.config import Config
from msgsvc.domain.broker import Broker
from msgsvc.domain.session import Session
from msgsvc.store import open_stores
from msgsvc.store.interfaces import IQueueStore, Message, QueueStats
from msgsvc.store.memory import MemoryQueueStore
from tests.helpers import FakeClient, run_now, temp_dir
from tests.redis_sync import redis_at_once


@implementer(IQueueStore)
class LaterQueueStore:
    """Every operation answers with a Deferred; the memory store behind runs it, and it fires, later.

    With a clock, each answer comes on the clock's next turn; without one, when
    the test calls :meth:`answer_next`. Operations run in the order they were
    called, as the interface promises.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock
        self._store = MemoryQueueStore()
        self._unanswered: deque[Callable[[], None]] = deque()
        self.answered = 0
        """Operations answered so far."""

    def answer_next(self) -> None:
        """Run the oldest operation not yet answered, and fire its Deferred."""
        self._unanswered.popleft()()

    @property
    def unanswered(self) -> int:
        """Operations called but not answered yet."""
        return len(self._unanswered)

    def _later(self, operation: str, *args: Any) -> Deferred[Any]:
        answer: Deferred[Any] = Deferred()

        def run() -> None:
            self.answered += 1
            try:
                result = getattr(self._store, operation)(*args)
            except Exception as error:
                answer.errback(error)
            else:
                answer.callback(result)

        self._unanswered.append(run)
        if self._clock is not None:
            self._clock.callLater(0, self.answer_next)
        return answer

    def enqueue(self, queue: str, payload: bytes, now: float) -> Deferred[int]:
        return self._later("enqueue", queue, payload, now)

    def dequeue(self, queue: str, now: float) -> Deferred[Message | None]:
        return self._later("dequeue", queue, now)

    def reserve(self, queue: str, now: float) -> Deferred[Message | None]:
        return self._later("reserve", queue, now)

    def acknowledge(self, message_id: int) -> Deferred[None]:
        return self._later("acknowledge", message_id)

    def release(self, message_id: int, ready_at: float) -> Deferred[None]:
        return self._later("release", message_id, ready_at)

    def move(self, message_id: int, queue: str, now: float) -> Deferred[None]:
        return self._later("move", message_id, queue, now)

    def unreserve(self, message_id: int) -> Deferred[None]:
        return self._later("unreserve", message_id)

    def give_back(self, queue: str, message: Message) -> Deferred[None]:
        return self._later("give_back", queue, message)

    def depths(self) -> Deferred[list[tuple[str, int]]]:
        return self._later("depths")

    def stats(self, queue: str, now: float) -> Deferred[QueueStats]:
        return self._later("stats", queue, now)


class StoreKinds:
    """Mixed into a test case: ``make_broker`` builds a broker over the queue store of ``kind``."""

    kind = "memory"
    """``memory``, ``sqlite``, ``redis`` (answering at once: tests.redis_sync) or ``later`` (a LaterQueueStore)."""

    def make_broker(self, **settings: Any) -> Broker:
        """A broker on a Clock over a fresh store of this kind, closed after the test."""
        clock = Clock()
        if self.kind == "redis":
            stores = redis_at_once()
        elif self.kind == "sqlite":
            stores = open_stores("sqlite:" + os.path.join(temp_dir(self), "msgsvc.sqlite"), clock)
        else:
            stores = open_stores("memory", clock)
        if self.kind == "later":
            stores = replace(stores, queues=LaterQueueStore(clock))
        self.addCleanup(stores.close)
        return Broker(stores, Config(**settings), clock, run_now)


class QueueFixture(StoreKinds):
    """A broker's queue service over the store of ``kind``, and helpers to drive it on its Clock."""

    def setUp(self) -> None:
        self.broker = self.make_broker(max_clients=0, ttr=30)
        self.clock = self.broker.clock
        self.queues = self.broker.queues

    def session(self) -> Session:
        """A new client of the broker."""
        return self.broker.open_session(FakeClient())

    def now(self, answer: Any) -> Any:
        """What an operation answered, once the store has had its turn."""
        self.clock.advance(0)
        return self.successResultOf(answer) if isinstance(answer, Deferred) else answer
