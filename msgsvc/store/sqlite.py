# -*- test-case-name: tests.test_reliable -*-
"""The SQLite stores: queues, microblog, accounts and forum in one database file (see ``database``)."""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from itertools import count

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from msgsvc.store.database import Database
from msgsvc.store.interfaces import (
    Account,
    FileExists,
    ForumError,
    IAccountStore,
    IForumStore,
    IQueueStore,
    ITweetStore,
    Message,
    MessageTooBig,
    NoMessage,
    NoThread,
    NotOwner,
    Post,
    QueueStats,
    Tweet,
    Upload,
)


@implementer(IQueueStore)
class SqliteQueueStore:
    """Queues as rows ordered by ``position``; counts per queue are kept in memory.

    Every operation takes effect at once; replies wait for the grouped commit
    (see ``Database.after_commit``). A message sent waits in memory until that
    commit writes it, so one received in the same turn never touches the disk.

    The database is this process's alone (it is locked), so positions and
    counts can be tracked here instead of being queried: a message sent goes
    after every position used so far, one given back goes before all of them.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        tail, head = db.read("SELECT MAX(position), MIN(position) FROM messages").fetchone()
        self._tail = (tail or 0) + 1
        self._head = (head or 0) - 1
        sequence = db.read("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").fetchone()
        self._issued = self._persisted = sequence[0] if sequence else 0
        """The highest message id handed out, and the highest recorded in the database."""
        self._pending: dict[str, deque[tuple[Message, int]]] = {}
        """Messages sent this turn, with their positions, not yet written."""
        db.before_commit(self._write_pending)
        self._unreserved: dict[str, int] = dict(
            db.read("SELECT queue, COUNT(*) FROM messages GROUP BY queue").fetchall()
        )
        self._reserved: dict[str, int] = {}
        self._delayed: dict[int, tuple[str, float]] = {
            message_id: (queue, ready_at)
            for message_id, queue, ready_at in db.read("SELECT id, queue, ready_at FROM messages WHERE ready_at > 0")
        }

    def enqueue(self, queue: str, payload: bytes, now: float) -> int:
        self._issued += 1
        self._pending.setdefault(queue, deque()).append((Message(self._issued, payload, now), self._next_tail()))
        _add(self._unreserved, queue, 1)
        self._db.changed()
        return self._issued

    def dequeue(self, queue: str, max_bytes: int | None, now: float) -> Message | None:
        return self._take(queue, max_bytes, now, reserve=False)

    def reserve(self, queue: str, max_bytes: int | None, now: float) -> Message | None:
        return self._take(queue, max_bytes, now, reserve=True)

    def _take(self, queue: str, max_bytes: int | None, now: float, reserve: bool) -> Message | None:
        waiting = self._unreserved.get(queue)
        if not waiting:
            return None
        pending = self._pending.get(queue)
        head = None
        if waiting > len(pending or ()):  # written messages come before this turn's
            head = self._db.read(
                "SELECT id, payload, enqueued_at, deliveries FROM messages"
                " WHERE queue = ? AND reserved = 0 AND ready_at <= ? ORDER BY position LIMIT 1",
                (queue, now),
            ).fetchone()
        if head is None:
            return self._take_pending(queue, max_bytes, reserve) if pending else None
        message_id, payload, enqueued_at, deliveries = head
        if max_bytes is not None and len(payload) > max_bytes:
            raise MessageTooBig(len(payload))
        self._delayed.pop(message_id, None)
        _add(self._unreserved, queue, -1)
        if reserve:
            self._db.write("UPDATE messages SET reserved = 1, deliveries = deliveries + 1 WHERE id = ?", (message_id,))
            _add(self._reserved, queue, 1)
            deliveries += 1
        else:
            self._db.write("DELETE FROM messages WHERE id = ?", (message_id,))
        return Message(message_id, payload, enqueued_at, deliveries)

    def _take_pending(self, queue: str, max_bytes: int | None, reserve: bool) -> Message | None:
        """Take a message sent this turn: received, it is never written; reserved, it is written as such."""
        pending = self._pending[queue]
        message, position = pending[0]
        if max_bytes is not None and len(message.payload) > max_bytes:
            raise MessageTooBig(len(message.payload))
        pending.popleft()
        if not pending:
            del self._pending[queue]
        _add(self._unreserved, queue, -1)
        if reserve:
            message = replace(message, deliveries=1)
            self._db.write(
                "INSERT INTO messages (id, queue, position, payload, enqueued_at, deliveries, reserved)"
                " VALUES (?, ?, ?, ?, ?, 1, 1)",
                (message.id, queue, position, message.payload, message.enqueued_at),
            )
            _add(self._reserved, queue, 1)
        return message

    def _write_pending(self, queue: str | None = None) -> None:
        """Write the messages still waiting in memory (of one queue, or all), and the highest id handed out."""
        queues = [queue] if queue is not None else list(self._pending)
        rows = [
            (message.id, name, position, message.payload, message.enqueued_at)
            for name in queues
            for message, position in self._pending.pop(name, ())
        ]
        if rows:
            self._db.write_many(
                "INSERT INTO messages (id, queue, position, payload, enqueued_at) VALUES (?, ?, ?, ?, ?)", rows
            )
        if self._issued > self._persisted:  # ids of messages never written are not handed out again
            if not self._db.write(
                "UPDATE sqlite_sequence SET seq = ? WHERE name = 'messages'", (self._issued,)
            ).rowcount:
                self._db.write("INSERT INTO sqlite_sequence (name, seq) VALUES ('messages', ?)", (self._issued,))
            self._persisted = self._issued

    def acknowledge(self, message_id: int) -> None:
        queue = self._queue_of(message_id)
        self._db.write("DELETE FROM messages WHERE id = ?", (message_id,))
        _add(self._reserved, queue, -1)

    def release(self, message_id: int, ready_at: float) -> None:
        queue = self._queue_of(message_id)
        self._db.write(
            "UPDATE messages SET reserved = 0, position = ?, ready_at = ? WHERE id = ?",
            (self._next_head(), ready_at, message_id),
        )
        _add(self._reserved, queue, -1)
        _add(self._unreserved, queue, 1)
        self._delayed[message_id] = (queue, ready_at)

    def move(self, message_id: int, queue: str, now: float) -> None:
        self._write_pending(queue)  # so that the moved message stays behind the ones sent before it
        old_queue = self._queue_of(message_id)
        self._db.write(
            "UPDATE messages SET queue = ?, reserved = 0, position = ?, ready_at = 0 WHERE id = ?",
            (queue, self._next_tail(), message_id),
        )
        _add(self._reserved, old_queue, -1)
        _add(self._unreserved, queue, 1)

    def restore(self, queue: str, message: Message) -> None:
        self._db.write(
            "INSERT INTO messages (id, queue, position, payload, enqueued_at, deliveries) VALUES (?, ?, ?, ?, ?, ?)",
            (message.id, queue, self._next_head(), message.payload, message.enqueued_at, message.deliveries),
        )
        _add(self._unreserved, queue, 1)

    def depths(self) -> list[tuple[str, int]]:
        return sorted(self._unreserved.items())

    def stats(self, queue: str, now: float) -> QueueStats:
        delayed = 0
        for message_id, (where, ready_at) in list(self._delayed.items()):
            if ready_at <= now:
                del self._delayed[message_id]
            elif where == queue:
                delayed += 1
        head = self._db.read(
            "SELECT enqueued_at FROM messages WHERE queue = ? AND reserved = 0 AND ready_at <= ?"
            " ORDER BY position LIMIT 1",
            (queue, now),
        ).fetchone()
        oldest = head[0] if head else None
        if oldest is None and queue in self._pending:
            oldest = self._pending[queue][0][0].enqueued_at
        unreserved = self._unreserved.get(queue, 0)
        return QueueStats(unreserved - delayed, delayed, self._reserved.get(queue, 0), oldest)

    def _queue_of(self, message_id: int) -> str:
        (queue,) = self._db.read("SELECT queue FROM messages WHERE id = ?", (message_id,)).fetchone()
        return queue

    def _next_tail(self) -> int:
        self._tail += 1
        return self._tail - 1

    def _next_head(self) -> int:
        self._head -= 1
        return self._head + 1


def _add(counts: dict[str, int], queue: str, change: int) -> None:
    """Adjust a per-queue count, forgetting queues that drop to zero."""
    total = counts.get(queue, 0) + change
    if total:
        counts[queue] = total
    else:
        counts.pop(queue, None)


@implementer(ITweetStore)
class SqliteTweetStore:
    """Microblog messages and their hashtag index as two tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def post(self, author: str, text: str, tags: frozenset[str]) -> Deferred[int]:
        cursor = self._db.write("INSERT INTO tweets (author, text) VALUES (?, ?)", (author, text))
        tweet_id = cursor.lastrowid
        for tag in sorted(tags):
            self._db.write("INSERT INTO tweet_tags (tag, tweet_id) VALUES (?, ?)", (tag, tweet_id))
        return succeed(tweet_id)

    def last(self) -> Deferred[Tweet | None]:
        row = self._db.read("SELECT id, author, text FROM tweets ORDER BY id DESC LIMIT 1").fetchone()
        return succeed(Tweet(*row) if row else None)

    def tagged(self, tag: str, limit: int) -> Deferred[list[Tweet]]:
        rows = self._db.read(
            "SELECT t.id, t.author, t.text FROM tweet_tags g JOIN tweets t ON t.id = g.tweet_id"
            " WHERE g.tag = ? ORDER BY g.tweet_id DESC LIMIT ?",
            (tag, limit),
        ).fetchall()
        return succeed([Tweet(*row) for row in rows])


@implementer(IAccountStore)
class SqliteAccountStore:
    """Accounts keyed by the case-folded name; only the password hash is stored."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get_account(self, name: str) -> Deferred[Account | None]:
        row = self._db.read("SELECT name, password_hash FROM accounts WHERE folded = ?", (name.casefold(),)).fetchone()
        return succeed(Account(*row) if row else None)

    def add_account(self, account: Account) -> Deferred[bool]:
        cursor = self._db.write(
            "INSERT OR IGNORE INTO accounts (folded, name, password_hash) VALUES (?, ?, ?)",
            (account.name.casefold(), account.name, account.password_hash),
        )
        return succeed(cursor.rowcount == 1)


@implementer(IForumStore)
class SqliteForumStore:
    """Threads and their entries (messages and uploads) in posting order.

    A message's number is its rank among the thread's messages, so deleting one
    renumbers the later ones without rewriting them.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def blobs(self) -> set[str]:
        """Every file key an upload refers to."""
        return {blob for (blob,) in self._db.read("SELECT blob FROM entries WHERE blob IS NOT NULL")}

    def create_thread(self, title: str, creator: str) -> Deferred[bool]:
        cursor = self._db.write("INSERT OR IGNORE INTO threads (title, creator) VALUES (?, ?)", (title, creator))
        return succeed(cursor.rowcount == 1)

    def titles(self) -> Deferred[list[str]]:
        return succeed([title for (title,) in self._db.read("SELECT title FROM threads ORDER BY id")])

    def add_post(self, title: str, user: str, text: str) -> Deferred[int]:
        try:
            thread, _ = self._thread(title)
        except NoThread as error:
            return fail(error)
        self._db.write("INSERT INTO entries (thread, user, text) VALUES (?, ?, ?)", (thread, user, text))
        (number,) = self._db.read(
            "SELECT COUNT(*) FROM entries WHERE thread = ? AND file IS NULL", (thread,)
        ).fetchone()
        return succeed(number)

    def edit_post(self, title: str, number: int, user: str, text: str) -> Deferred[None]:
        try:
            entry = self._own_post(title, number, user)
        except ForumError as error:
            return fail(error)
        self._db.write("UPDATE entries SET text = ? WHERE id = ?", (text, entry))
        return succeed(None)

    def delete_post(self, title: str, number: int, user: str) -> Deferred[None]:
        try:
            entry = self._own_post(title, number, user)
        except ForumError as error:
            return fail(error)
        self._db.write("DELETE FROM entries WHERE id = ?", (entry,))
        return succeed(None)

    def entries(self, title: str) -> Deferred[list[Post | Upload]]:
        try:
            thread, _ = self._thread(title)
        except NoThread as error:
            return fail(error)
        found: list[Post | Upload] = []
        numbers = count(1)
        for user, text, file, blob in self._db.read(
            "SELECT user, text, file, blob FROM entries WHERE thread = ? ORDER BY id", (thread,)
        ):
            found.append(Upload(user, file, blob) if file is not None else Post(next(numbers), user, text))
        return succeed(found)

    def add_upload(self, title: str, upload: Upload) -> Deferred[None]:
        try:
            thread, _ = self._thread(title)
        except NoThread as error:
            return fail(error)
        cursor = self._db.write(
            "INSERT OR IGNORE INTO entries (thread, user, file, blob) VALUES (?, ?, ?, ?)",
            (thread, upload.user, upload.file, upload.blob),
        )
        return succeed(None) if cursor.rowcount == 1 else fail(FileExists(upload.file))

    def find_upload(self, title: str, file: str) -> Deferred[Upload | None]:
        try:
            thread, _ = self._thread(title)
        except NoThread as error:
            return fail(error)
        row = self._db.read(
            "SELECT user, file, blob FROM entries WHERE thread = ? AND file = ?", (thread, file)
        ).fetchone()
        return succeed(Upload(*row) if row else None)

    def remove_thread(self, title: str, user: str) -> Deferred[list[str]]:
        try:
            thread, creator = self._thread(title)
        except NoThread as error:
            return fail(error)
        if creator != user:
            return fail(NotOwner(title))
        blobs = [
            blob
            for (blob,) in self._db.read("SELECT blob FROM entries WHERE thread = ? AND blob IS NOT NULL", (thread,))
        ]
        self._db.write("DELETE FROM entries WHERE thread = ?", (thread,))
        self._db.write("DELETE FROM threads WHERE id = ?", (thread,))
        return succeed(blobs)

    def _thread(self, title: str) -> tuple[int, str]:
        row = self._db.read("SELECT id, creator FROM threads WHERE title = ?", (title,)).fetchone()
        if row is None:
            raise NoThread(title)
        return row

    def _own_post(self, title: str, number: int, user: str) -> int:
        thread, _ = self._thread(title)
        row = self._db.read(
            "SELECT id, user FROM entries WHERE thread = ? AND file IS NULL ORDER BY id LIMIT 1 OFFSET ?",
            (thread, number - 1),
        ).fetchone()
        if row is None or number < 1:
            raise NoMessage(number)
        if row[1] != user:
            raise NotOwner(number)
        return row[0]
