# -*- test-case-name: tests.test_queues -*-
"""The in-memory store: fast, and forgets everything when the process ends."""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field, replace
from itertools import count

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from msgsvc.store.blobs import FileStore
from msgsvc.store.interfaces import (
    Account,
    FileExists,
    IAccountStore,
    IForumStore,
    IQueueStore,
    ITweetStore,
    Message,
    NoMessage,
    NoThread,
    NotOwner,
    Post,
    QueueStats,
    Tweet,
    Upload,
)
from msgsvc.store.registry import Stores


def open_stores(url: str, clock: IReactorTime) -> Stores:
    """The stores of ``--store memory``: nothing outlives the process."""
    files = FileStore(None)
    return Stores(
        queues=MemoryQueueStore(),
        tweets=MemoryTweetStore(),
        accounts=MemoryAccountStore(),
        forum=MemoryForumStore(),
        files=files,
        close=files.close,
    )


@dataclass(slots=True)
class _Queue:
    """One queue's messages: ready in order, delayed by when they are due, and how many are reserved."""

    ready: deque[Message] = field(default_factory=deque)
    delayed: list[tuple[float, int, Message]] = field(default_factory=list)
    reserved: int = 0

    def promote(self, now: float) -> None:
        """Delayed messages whose time has come go to the head, the earliest due first in line."""
        due = []
        while self.delayed and self.delayed[0][0] <= now:
            due.append(heapq.heappop(self.delayed)[2])
        self.ready.extendleft(reversed(due))

    @property
    def empty(self) -> bool:
        return not (self.ready or self.delayed or self.reserved)


@implementer(IQueueStore)
class MemoryQueueStore:
    """Queues held in memory; an emptied queue is forgotten."""

    def __init__(self) -> None:
        self._queues: dict[str, _Queue] = {}
        self._reserved: dict[int, tuple[str, Message]] = {}
        self._ids = count(1)

    def enqueue(self, queue: str, payload: bytes, now: float) -> int:
        message = Message(next(self._ids), payload, now)
        found = self._queues.get(queue)
        if found is None:
            found = self._queues[queue] = _Queue()
        found.ready.append(message)
        return message.id

    def dequeue(self, queue: str, now: float) -> Message | None:
        return self._take(queue, now, reserve=False)

    def reserve(self, queue: str, now: float) -> Message | None:
        return self._take(queue, now, reserve=True)

    def _take(self, name: str, now: float, reserve: bool) -> Message | None:
        queue = self._queues.get(name)
        if queue is None:
            return None
        if queue.delayed:
            queue.promote(now)
        if not queue.ready:
            return None
        message = queue.ready.popleft()
        if reserve:
            message = replace(message, deliveries=message.deliveries + 1)
            self._reserved[message.id] = (name, message)
            queue.reserved += 1
        if queue.empty:
            del self._queues[name]
        return message

    def acknowledge(self, message_id: int) -> None:
        self._unreserve(message_id)

    def release(self, message_id: int, ready_at: float) -> None:
        name, message = self._unreserve(message_id)
        heapq.heappush(self._queue(name).delayed, (ready_at, message.id, message))

    def move(self, message_id: int, queue: str, now: float) -> None:
        _, message = self._unreserve(message_id)
        self._queue(queue).ready.append(message)

    def unreserve(self, message_id: int) -> None:
        name, message = self._unreserve(message_id)
        self._queue(name).ready.appendleft(replace(message, deliveries=message.deliveries - 1))

    def give_back(self, queue: str, message: Message) -> None:
        self._queue(queue).ready.appendleft(message)

    def depths(self) -> list[tuple[str, int]]:
        return sorted((name, len(q.ready) + len(q.delayed)) for name, q in self._queues.items() if q.ready or q.delayed)

    def stats(self, queue: str, now: float) -> QueueStats:
        found = self._queues.get(queue) or _Queue()
        found.promote(now)
        oldest = found.ready[0].enqueued_at if found.ready else None
        return QueueStats(len(found.ready), len(found.delayed), found.reserved, oldest)

    def _queue(self, name: str) -> _Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = _Queue()
        return queue

    def _unreserve(self, message_id: int) -> tuple[str, Message]:
        name, message = self._reserved.pop(message_id)
        self._queues[name].reserved -= 1
        self._forget_if_empty(name)
        return name, message

    def _forget_if_empty(self, name: str) -> None:
        queue = self._queues.get(name)
        if queue is not None and queue.empty:
            del self._queues[name]


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


@implementer(IAccountStore)
class MemoryAccountStore:
    """Accounts in a dict keyed by the case-folded name."""

    def __init__(self) -> None:
        self._accounts: dict[str, Account] = {}

    def get_account(self, name: str) -> Deferred[Account | None]:
        return succeed(self._accounts.get(name.casefold()))

    def add_account(self, account: Account) -> Deferred[bool]:
        key = account.name.casefold()
        if key in self._accounts:
            return succeed(False)
        self._accounts[key] = account
        return succeed(True)


@dataclass(eq=False)
class _Thread:
    creator: str
    entries: list[list | Upload] = field(default_factory=list)
    """``[user, text]`` lists for messages (mutable for EDT) and Upload records."""

    def posts(self) -> list[list]:
        return [entry for entry in self.entries if isinstance(entry, list)]


@implementer(IForumStore)
class MemoryForumStore:
    """Threads in an insertion-ordered dict; a message's number is its position among the messages."""

    def __init__(self) -> None:
        self._threads: dict[str, _Thread] = {}

    def _thread(self, title: str) -> _Thread:
        thread = self._threads.get(title)
        if thread is None:
            raise NoThread(title)
        return thread

    def _own_post(self, title: str, number: int, user: str) -> tuple[_Thread, list]:
        thread = self._thread(title)
        posts = thread.posts()
        if not 1 <= number <= len(posts):
            raise NoMessage(number)
        post = posts[number - 1]
        if post[0] != user:
            raise NotOwner(number)
        return thread, post

    def create_thread(self, title: str, creator: str) -> Deferred[bool]:
        if title in self._threads:
            return succeed(False)
        self._threads[title] = _Thread(creator)
        return succeed(True)

    def titles(self) -> Deferred[list[str]]:
        return succeed(list(self._threads))

    def add_post(self, title: str, user: str, text: str) -> Deferred[int]:
        try:
            thread = self._thread(title)
        except NoThread as error:
            return fail(error)
        thread.entries.append([user, text])
        return succeed(len(thread.posts()))

    def edit_post(self, title: str, number: int, user: str, text: str) -> Deferred[None]:
        try:
            _, post = self._own_post(title, number, user)
        except (NoThread, NoMessage, NotOwner) as error:
            return fail(error)
        post[1] = text
        return succeed(None)

    def delete_post(self, title: str, number: int, user: str) -> Deferred[None]:
        try:
            thread, post = self._own_post(title, number, user)
        except (NoThread, NoMessage, NotOwner) as error:
            return fail(error)
        thread.entries = [entry for entry in thread.entries if entry is not post]
        return succeed(None)

    def entries(self, title: str) -> Deferred[list[Post | Upload]]:
        try:
            thread = self._thread(title)
        except NoThread as error:
            return fail(error)
        numbers = count(1)
        return succeed([Post(next(numbers), *entry) if isinstance(entry, list) else entry for entry in thread.entries])

    def add_upload(self, title: str, upload: Upload) -> Deferred[None]:
        try:
            thread = self._thread(title)
        except NoThread as error:
            return fail(error)
        if any(isinstance(entry, Upload) and entry.file == upload.file for entry in thread.entries):
            return fail(FileExists(upload.file))
        thread.entries.append(upload)
        return succeed(None)

    def find_upload(self, title: str, file: str) -> Deferred[Upload | None]:
        try:
            thread = self._thread(title)
        except NoThread as error:
            return fail(error)
        found = [entry for entry in thread.entries if isinstance(entry, Upload) and entry.file == file]
        return succeed(found[0] if found else None)

    def remove_thread(self, title: str, user: str) -> Deferred[list[str]]:
        try:
            thread = self._thread(title)
        except NoThread as error:
            return fail(error)
        if thread.creator != user:
            return fail(NotOwner(title))
        del self._threads[title]
        return succeed([entry.blob for entry in thread.entries if isinstance(entry, Upload)])
