# -*- test-case-name: tests.test_queues -*-
"""The message queue system: FIFO delivery to exactly one receiver, with optional waiting."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from msgsvc.session import Session
from msgsvc.store.interfaces import IQueueStore, Message


@dataclass(eq=False)
class _Waiter:
    """A receiver waiting for a message on one queue."""

    session: Session
    queue: str
    max_bytes: int | None
    result: Deferred[Message | None] = field(default_factory=Deferred)
    timer: IDelayedCall | None = None
    done: bool = False
    """Answered, expired, or its client left: it must take nothing more."""


class QueueService:
    """Named FIFO queues over a store; receivers may wait, served in arrival order."""

    def __init__(self, store: IQueueStore, clock: IReactorTime) -> None:
        self._store = store
        self._clock = clock
        self._waiting: dict[str, deque[_Waiter]] = {}
        self._waiters_of: dict[Session, set[_Waiter]] = {}

    def send(self, queue: str, payload: bytes) -> Deferred[int]:
        """Store a message; fires with its id, then hands it to the longest waiter."""
        return self._store.enqueue(queue, payload).addCallback(self._sent, queue)

    def _sent(self, message_id: int, queue: str) -> int:
        self._wake(queue)
        return message_id

    def receive(self, session: Session, queue: str, wait: float, max_bytes: int | None) -> Deferred[Message | None]:
        """Remove the oldest message; if there is none, wait up to ``wait`` seconds for one.

        Fires with None when nothing arrived. Fails with MessageTooBig, removing
        nothing, when the oldest message exceeds ``max_bytes``.
        """
        result = self._store.dequeue(queue, max_bytes)
        return result.addCallback(self._received, session, queue, wait, max_bytes)

    def _received(self, message: Message | None, session: Session, queue: str, wait: float, max_bytes: int | None):
        if message is not None:
            if session.open:
                return message
            self._restore(queue, message)
            return None
        if wait <= 0 or not session.open:
            return None
        waiter = _Waiter(session, queue, max_bytes)
        waiter.timer = self._clock.callLater(wait, self._finish, waiter, None)
        self._waiting.setdefault(queue, deque()).append(waiter)
        self._waiters_of.setdefault(session, set()).add(waiter)
        return waiter.result

    def depths(self) -> Deferred[list[tuple[str, int]]]:
        """Every non-empty queue with its depth."""
        return self._store.depths()

    def session_closed(self, session: Session) -> None:
        """A client left: its waiting receives end and take nothing."""
        for waiter in self._waiters_of.pop(session, ()):
            waiter.done = True
            if waiter.timer is not None and waiter.timer.active():
                waiter.timer.cancel()

    def _wake(self, queue: str) -> None:
        waiters = self._waiting.get(queue)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done:
                self._store.dequeue(queue, waiter.max_bytes).addBoth(self._served, waiter)
                break
        if not waiters and self._waiting.get(queue) is waiters:
            self._waiting.pop(queue, None)  # an empty line of waiters is forgotten

    def _served(self, outcome: Message | Failure | None, waiter: _Waiter) -> None:
        if outcome is None:
            if not waiter.done:
                self._waiting.setdefault(waiter.queue, deque()).appendleft(waiter)
        elif isinstance(outcome, Failure):
            self._finish(waiter, outcome)
            self._wake(waiter.queue)
        elif waiter.done:
            self._restore(waiter.queue, outcome)
        else:
            self._finish(waiter, outcome)

    def _finish(self, waiter: _Waiter, outcome: Message | Failure | None) -> None:
        if waiter.done:
            return
        waiter.done = True
        if waiter.timer is not None and waiter.timer.active():
            waiter.timer.cancel()
        others = self._waiters_of.get(waiter.session)
        if others is not None:
            others.discard(waiter)
            if not others:
                del self._waiters_of[waiter.session]
        if isinstance(outcome, Failure):
            waiter.result.errback(outcome)
        else:
            waiter.result.callback(outcome)

    def _restore(self, queue: str, message: Message) -> None:
        self._store.restore(queue, message).addCallback(lambda _: self._wake(queue))
