# -*- test-case-name: tests.test_queues -*-
"""The in-memory store: fast, and forgets everything when the process ends."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from itertools import count

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from msgsvc.store.interfaces import (
    Account,
    FileExists,
    IAccountStore,
    IForumStore,
    IQueueStore,
    Message,
    MessageTooBig,
    NoMessage,
    NoThread,
    NotOwner,
    Post,
    Upload,
)


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
