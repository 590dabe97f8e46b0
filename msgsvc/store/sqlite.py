# -*- test-case-name: tests.test_sqlite -*-
"""The SQLite stores: queues and the microblog in one database file (see ``database``)."""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from msgsvc.store.database import Database
from msgsvc.store.interfaces import IQueueStore, ITweetStore, Message, MessageTooBig, QueueStats, Tweet


@implementer(IQueueStore)
class SqliteQueueStore:
    """Queues as rows ordered by ``position``; counts per queue are kept in memory.

    Every operation takes effect at once inside the database's grouped
    transaction; replies wait for its commit (see ``Database.after_commit``).

    The database is this process's alone (it is locked), so positions and
    counts can be tracked here instead of being queried: a message sent goes
    after every position used so far, one given back goes before all of them.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        tail, head = db.read("SELECT MAX(position), MIN(position) FROM messages").fetchone()
        self._tail = (tail or 0) + 1
        self._head = (head or 0) - 1
        self._unreserved: dict[str, int] = dict(
            db.read("SELECT queue, COUNT(*) FROM messages GROUP BY queue").fetchall()
        )
        self._reserved: dict[str, int] = {}
        self._delayed: dict[int, tuple[str, float]] = {
            message_id: (queue, ready_at)
            for message_id, queue, ready_at in db.read("SELECT id, queue, ready_at FROM messages WHERE ready_at > 0")
        }

    def enqueue(self, queue: str, payload: bytes, now: float) -> Deferred[int]:
        cursor = self._db.write(
            "INSERT INTO messages (queue, position, payload, enqueued_at) VALUES (?, ?, ?, ?)",
            (queue, self._next_tail(), payload, now),
        )
        _add(self._unreserved, queue, 1)
        return succeed(cursor.lastrowid)

    def dequeue(self, queue: str, max_bytes: int | None, now: float) -> Deferred[Message | None]:
        return self._take(queue, max_bytes, now, reserve=False)

    def reserve(self, queue: str, max_bytes: int | None, now: float) -> Deferred[Message | None]:
        return self._take(queue, max_bytes, now, reserve=True)

    def _take(self, queue: str, max_bytes: int | None, now: float, reserve: bool) -> Deferred[Message | None]:
        if not self._unreserved.get(queue):
            return succeed(None)
        head = self._db.read(
            "SELECT id, length(payload), enqueued_at, deliveries FROM messages"
            " WHERE queue = ? AND reserved = 0 AND ready_at <= ? ORDER BY position LIMIT 1",
            (queue, now),
        ).fetchone()
        if head is None:
            return succeed(None)
        message_id, size, enqueued_at, deliveries = head
        if max_bytes is not None and size > max_bytes:
            return fail(MessageTooBig(size))
        (payload,) = self._db.read("SELECT payload FROM messages WHERE id = ?", (message_id,)).fetchone()
        self._delayed.pop(message_id, None)
        _add(self._unreserved, queue, -1)
        if reserve:
            self._db.write("UPDATE messages SET reserved = 1, deliveries = deliveries + 1 WHERE id = ?", (message_id,))
            _add(self._reserved, queue, 1)
            deliveries += 1
        else:
            self._db.write("DELETE FROM messages WHERE id = ?", (message_id,))
        return succeed(Message(message_id, payload, enqueued_at, deliveries))

    def acknowledge(self, message_id: int) -> Deferred[None]:
        queue = self._queue_of(message_id)
        self._db.write("DELETE FROM messages WHERE id = ?", (message_id,))
        _add(self._reserved, queue, -1)
        return succeed(None)

    def release(self, message_id: int, ready_at: float) -> Deferred[None]:
        queue = self._queue_of(message_id)
        self._db.write(
            "UPDATE messages SET reserved = 0, position = ?, ready_at = ? WHERE id = ?",
            (self._next_head(), ready_at, message_id),
        )
        _add(self._reserved, queue, -1)
        _add(self._unreserved, queue, 1)
        self._delayed[message_id] = (queue, ready_at)
        return succeed(None)

    def move(self, message_id: int, queue: str, now: float) -> Deferred[None]:
        old_queue = self._queue_of(message_id)
        self._db.write(
            "UPDATE messages SET queue = ?, reserved = 0, position = ?, ready_at = 0 WHERE id = ?",
            (queue, self._next_tail(), message_id),
        )
        _add(self._reserved, old_queue, -1)
        _add(self._unreserved, queue, 1)
        return succeed(None)

    def restore(self, queue: str, message: Message) -> Deferred[None]:
        self._db.write(
            "INSERT INTO messages (id, queue, position, payload, enqueued_at, deliveries) VALUES (?, ?, ?, ?, ?, ?)",
            (message.id, queue, self._next_head(), message.payload, message.enqueued_at, message.deliveries),
        )
        _add(self._unreserved, queue, 1)
        return succeed(None)

    def depths(self) -> Deferred[list[tuple[str, int]]]:
        return succeed(sorted(self._unreserved.items()))

    def stats(self, queue: str, now: float) -> Deferred[QueueStats]:
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
        unreserved = self._unreserved.get(queue, 0)
        return succeed(
            QueueStats(unreserved - delayed, delayed, self._reserved.get(queue, 0), head[0] if head else None)
        )

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
