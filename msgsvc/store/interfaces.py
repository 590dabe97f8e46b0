"""The store interfaces: what the broker asks of wherever state lives.

Every operation returns a Deferred so a store may be in memory, on disk or
across the network. A change is visible to later operations as soon as its
Deferred fires; whether it is durable yet is the store's ``confirm`` hook's
business (see ``msgsvc.store.Stores``), which holds replies until it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.defer import Deferred
from zope.interface import Interface


class StoreError(Exception):
    """The store cannot be used; the message says why, on one line."""


@dataclass(frozen=True, slots=True)
class Message:
    """A queued message: its id (unique for the life of the store) and its exact bytes."""

    id: int
    payload: bytes
    enqueued_at: float = 0.0
    """When it was sent (seconds since the epoch)."""
    deliveries: int = 0
    """How often it has been reserved."""


@dataclass(frozen=True, slots=True)
class QueueStats:
    """What a store knows of one queue."""

    ready: int
    """Messages a receiver could take now."""
    delayed: int
    """Messages given back with a delay that is not over yet."""
    reserved: int
    oldest_enqueued_at: float | None
    """When the oldest ready message was sent, or None."""


class MessageTooBig(Exception):
    """The head message is larger than the receiver can take; it stays queued."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class IQueueStore(Interface):
    """Named FIFO queues of messages, with reservations for at-least-once delivery.

    A message is *ready* (in its queue, in order), *delayed* (given back with a
    delay; it becomes ready at the head of its queue when the delay is over) or
    *reserved* (invisible until acknowledged or released). A store reopened
    after a crash has no reservations: reserved messages are ready again.
    Times (``now``, ``ready_at``) are seconds since the epoch from the caller's clock.
    """

    def enqueue(queue: str, payload: bytes, now: float) -> Deferred[int]:
        """Append a message to ``queue``; fires with its new id."""

    def dequeue(queue: str, max_bytes: int | None, now: float) -> Deferred[Message | None]:
        """Remove and return the oldest ready message, or None if there is none.

        Fails with MessageTooBig, changing nothing, if it is larger than ``max_bytes``.
        """

    def reserve(queue: str, max_bytes: int | None, now: float) -> Deferred[Message | None]:
        """Reserve the oldest ready message (its ``deliveries`` counted), or None; MessageTooBig as dequeue."""

    def acknowledge(message_id: int) -> Deferred[None]:
        """Delete a reserved message."""

    def release(message_id: int, ready_at: float) -> Deferred[None]:
        """A reserved message goes back to the head of its queue, ready from ``ready_at``."""

    def move(message_id: int, queue: str, now: float) -> Deferred[None]:
        """A reserved message goes to the tail of another queue, ready."""

    def restore(queue: str, message: Message) -> Deferred[None]:
        """Put a removed message back at the head of its queue."""

    def depths() -> Deferred[list[tuple[str, int]]]:
        """Every queue holding ready or delayed messages, with their number, sorted by name."""

    def stats(queue: str, now: float) -> Deferred[QueueStats]:
        """Counts for one queue."""


@dataclass(frozen=True, slots=True)
class Tweet:
    """A microblog message: its id (increasing with time), its author and its text."""

    id: int
    author: str
    text: str


class ITweetStore(Interface):
    """Microblog messages, with an index from each hashtag to the messages that carry it."""

    def post(author: str, text: str, tags: frozenset[str]) -> Deferred[int]:
        """Store a message and index it under each of ``tags`` (lower-case, without ``#``).

        Fires with its new id, greater than every id before it.
        """

    def last() -> Deferred[Tweet | None]:
        """The most recent message, or None when nothing was ever posted."""

    def tagged(tag: str, limit: int) -> Deferred[list[Tweet]]:
        """Up to ``limit`` newest messages indexed under ``tag``, newest first.

        Costs in proportion to ``limit``, not to the number of messages stored.
        """
