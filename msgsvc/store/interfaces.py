"""The store interfaces: what the broker asks of wherever state lives.

Every operation returns a Deferred so a store may be in memory, on disk with
grouped commits, or across the network; a Deferred fires only once the change
is as durable as that store makes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.defer import Deferred
from zope.interface import Interface


@dataclass(frozen=True, slots=True)
class Message:
    """A queued message: its id (unique within the store) and its exact bytes."""

    id: int
    payload: bytes


class MessageTooBig(Exception):
    """The head message is larger than the receiver can take; it stays queued."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class IQueueStore(Interface):
    """Named FIFO queues of messages."""

    def enqueue(queue: str, payload: bytes) -> Deferred[int]:
        """Append a message to ``queue``; fires with its new id."""

    def dequeue(queue: str, max_bytes: int | None) -> Deferred[Message | None]:
        """Remove and return the oldest message, or None if the queue is empty.

        Fails with MessageTooBig, removing nothing, if the oldest message is
        larger than ``max_bytes``.
        """

    def restore(queue: str, message: Message) -> Deferred[None]:
        """Put a removed message back at the head of its queue."""

    def depths() -> Deferred[list[tuple[str, int]]]:
        """Every non-empty queue with its number of messages, sorted by name."""


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
