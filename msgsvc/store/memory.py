# -*- test-case-name: tests.test_queues -*-
"""The in-memory store: fast, and forgets everything when the process ends."""

from __future__ import annotations

from collections import deque
from itertools import count

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from msgsvc.store.interfaces import IQueueStore, Message, MessageTooBig


@implementer(IQueueStore)
class MemoryQueueStore:
    """Queues as deques; an emptied queue is forgotten."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Message]] = {}
        self._ids = count(1)

    def enqueue(self, queue: str, payload: bytes) -> Deferred[int]:
        message = Message(next(self._ids), payload)
        self._queues.setdefault(queue, deque()).append(message)
        return succeed(message.id)

    def dequeue(self, queue: str, max_bytes: int | None) -> Deferred[Message | None]:
        messages = self._queues.get(queue)
        if not messages:
            return succeed(None)
        if max_bytes is not None and len(messages[0].payload) > max_bytes:
            return fail(MessageTooBig(len(messages[0].payload)))
        message = messages.popleft()
        if not messages:
            del self._queues[queue]
        return succeed(message)

    def restore(self, queue: str, message: Message) -> Deferred[None]:
        self._queues.setdefault(queue, deque()).appendleft(message)
        return succeed(None)

    def depths(self) -> Deferred[list[tuple[str, int]]]:
        return succeed(sorted((name, len(messages)) for name, messages in self._queues.items()))
