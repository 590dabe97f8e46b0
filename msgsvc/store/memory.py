# -*- test-case-name: tests.test_queues -*-
"""The in-memory store: fast, and forgets everything when the process ends."""

from __future__ import annotations

from collections import deque
from itertools import count

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from msgsvc.store.interfaces import IQueueStore, ITweetStore, Message, MessageTooBig, Tweet


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


@implementer(ITweetStore)
class MemoryTweetStore:
    """Microblog messages in a list, with one list per hashtag as the index."""

    def __init__(self) -> None:
        self._tweets: list[Tweet] = []
        self._by_tag: dict[str, list[Tweet]] = {}
        self._ids = count(1)

    def post(self, author: str, text: str, tags: frozenset[str]) -> Deferred[int]:
        tweet = Tweet(next(self._ids), author, text)
        self._tweets.append(tweet)
        for tag in tags:
            self._by_tag.setdefault(tag, []).append(tweet)
        return succeed(tweet.id)

    def last(self) -> Deferred[Tweet | None]:
        return succeed(self._tweets[-1] if self._tweets else None)

    def tagged(self, tag: str, limit: int) -> Deferred[list[Tweet]]:
        tweets = self._by_tag.get(tag, [])
        return succeed(tweets[: -limit - 1 : -1] if limit > 0 else [])
