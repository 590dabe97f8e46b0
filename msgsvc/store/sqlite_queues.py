# -*- test-case-name: tests.test_reliable -*-
"""The SQLite queue store: named FIFO queues with reservations, as rows of the ``messages`` table."""

from __future__ import annotations

from collections import deque
from dataclasses import replace

from zope.interface import implementer

from msgsvc.store.database import Database
from msgsvc.store.interfaces import IQueueStore, Message, QueueStats


@implementer(IQueueStore)
class SqliteQueueStore:
    """Queues as rows ordered by ``position``; counts per queue are kept in memory.

    Every operation takes effect and answers at once; replies wait for the
    grouped commit (the database is the stores' IDurability). A message sent
    waits in memory until that commit writes it, so one received in the same
    turn never touches the disk.

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

    def dequeue(self, queue: str, now: float) -> Message | None:
        return self._take(queue, now, reserve=False)

    def reserve(self, queue: str, now: float) -> Message | None:
        return self._take(queue, now, reserve=True)

    def _take(self, queue: str, now: float, reserve: bool) -> Message | None:
        waiting = self._unreserved.get(queue)
        if not waiting:
            return None
        if self._delayed:
            self._promote(queue, now)
        pending = self._pending.get(queue)
        head = None
        if waiting > len(pending or ()):  # written messages come before this turn's
            head = self._db.read(
                "SELECT id, payload, enqueued_at, deliveries FROM messages"
                " WHERE queue = ? AND reserved = 0 AND ready_at <= ? ORDER BY position LIMIT 1",
                (queue, now),
            ).fetchone()
        if head is None:
            return self._take_pending(queue, reserve) if pending else None
        message_id, payload, enqueued_at, deliveries = head
        self._delayed.pop(message_id, None)
        _add(self._unreserved, queue, -1)
        if reserve:
            self._db.write("UPDATE messages SET reserved = 1, deliveries = deliveries + 1 WHERE id = ?", (message_id,))
            _add(self._reserved, queue, 1)
            deliveries += 1
        else:
            self._db.write("DELETE FROM messages WHERE id = ?", (message_id,))
        return Message(message_id, payload, enqueued_at, deliveries)

    def _promote(self, queue: str, now: float) -> None:
        """Released messages whose time has come go to the head, the earliest due first (as the memory store's)."""
        due = sorted(
            (ready_at, message_id)
            for message_id, (where, ready_at) in self._delayed.items()
            if where == queue and ready_at <= now
        )
        for _, message_id in reversed(due):
            del self._delayed[message_id]
            self._db.write(
                "UPDATE messages SET position = ?, ready_at = 0 WHERE id = ?", (self._next_head(), message_id)
            )

    def _take_pending(self, queue: str, reserve: bool) -> Message:
        """Take a message sent this turn: received, it is never written; reserved, it is written as such."""
        pending = self._pending[queue]
        message, position = pending.popleft()
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

    def unreserve(self, message_id: int) -> None:
        queue = self._queue_of(message_id)
        self._db.write(
            "UPDATE messages SET reserved = 0, deliveries = deliveries - 1, position = ?, ready_at = 0 WHERE id = ?",
            (self._next_head(), message_id),
        )
        _add(self._reserved, queue, -1)
        _add(self._unreserved, queue, 1)

    def give_back(self, queue: str, message: Message) -> None:
        self._db.write(
            "INSERT INTO messages (id, queue, position, payload, enqueued_at, deliveries) VALUES (?, ?, ?, ?, ?, ?)",
            (message.id, queue, self._next_head(), message.payload, message.enqueued_at, message.deliveries),
        )
        _add(self._unreserved, queue, 1)

    def depths(self) -> list[tuple[str, int]]:
        return sorted(self._unreserved.items())

    def stats(self, queue: str, now: float) -> QueueStats:
        delayed = sum(1 for where, ready_at in self._delayed.values() if where == queue and ready_at > now)
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
