"""The store interfaces: what the broker asks of wherever state lives.

The contract every store operation keeps: it answers with an
:data:`~msgsvc.store.answers.Answer`, which is either the value itself, when
the store has it at once, or a Deferred that fires with the value (or fails)
when the answer comes later. So a store may live in memory, on disk or across
the network, and callers take both: :func:`~msgsvc.store.answers.deferred`
turns an answer into a Deferred where the caller chains on it, and hot paths
test for the value's own type first. An expected failure (``NoThread``...) is
raised at once or fails the Deferred. The memory and SQLite queue stores
answer at once, so a message's path builds no Deferred; the memory and SQLite
tweet, account and forum stores answer with already-fired Deferreds.

Operations take effect in the order they are called, also when they answer
later. A change is visible to later operations as soon as it is made (or its
Deferred fires); whether it is durable yet is told by the stores'
:class:`IDurability`, which holds replies until it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from zope.interface import Attribute, Interface, implementer

from msgsvc.store.answers import Answer
from msgsvc.store.parts import PartFile


class IDurability(Interface):
    """When the changes made so far are durable, for holding replies until they are."""

    pending = Attribute("True while changes made so far wait for a commit")

    def confirm(value: Any) -> Any:
        """``value`` itself when nothing waits to commit, else a Deferred firing with it after the commit."""

    def when_committed(callback: Callable[[Exception | None], None]) -> None:
        """Call ``callback(None)`` once the changes made so far are durable, or with the error if committing fails."""


@implementer(IDurability)
class Immediate:
    """The durability of a store that keeps nothing: every change is as durable as it will get at once."""

    pending = False

    def confirm(self, value: Any) -> Any:
        return value

    def when_committed(self, callback: Callable[[Exception | None], None]) -> None:
        callback(None)


class StoreError(Exception):
    """The store cannot be used; the message says why, on one line."""


@dataclass(slots=True)
class Message:
    """A queued message: its id (unique for the life of the store) and its exact bytes.

    A value, never changed once made (not frozen only because one is built for
    every message, and a frozen dataclass costs three times as much to build).
    """

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
    counters: Mapping[str, int] | None = None
    """``sent``, ``received``, ``acked`` and ``redelivered`` as a store shared by several processes counts them;
    None from a store of one process, whose queue service counts for itself."""


class IQueueStore(Interface):
    """Named FIFO queues of messages, with reservations for at-least-once delivery.

    A message is *ready* (in its queue, in order), *delayed* (given back with a
    delay; it becomes ready at the head of its queue when the delay is over) or
    *reserved* (invisible until acknowledged or released). A store reopened
    after a crash has no reservations: reserved messages are ready again.
    Times (``now``, ``ready_at``) are seconds since the epoch from the caller's clock.
    Each operation answers with a value or a Deferred (see the module docstring).
    Callers on a message's path test the value's type rather than test for a
    Deferred, so an answer given at once is exactly what the signature says:
    an ``int`` id, a ``Message`` or None, or None for operations answering nothing.
    """

    def enqueue(queue: str, payload: bytes, now: float) -> Answer[int]:
        """Append a message to ``queue``; answers its new id."""

    def dequeue(queue: str, now: float) -> Answer[Message | None]:
        """Remove the oldest ready message and answer it, or None if there is none."""

    def reserve(queue: str, now: float) -> Answer[Message | None]:
        """Reserve the oldest ready message (its ``deliveries`` counted) and answer it, or None."""

    def acknowledge(message_id: int) -> Answer[None]:
        """Delete a reserved message."""

    def release(message_id: int, ready_at: float) -> Answer[None]:
        """A reserved message goes back to the head of its queue, ready from ``ready_at``."""

    def move(message_id: int, queue: str, now: float) -> Answer[None]:
        """A reserved message goes to the tail of another queue, ready."""

    def unreserve(message_id: int) -> Answer[None]:
        """Undo a reservation that delivered nothing: the message is ready at the head, its delivery uncounted."""

    def give_back(queue: str, message: Message) -> Answer[None]:
        """Undo a dequeue that delivered nothing: ``message`` is ready again at the head of ``queue``."""

    def depths() -> Answer[list[tuple[str, int]]]:
        """Every queue holding ready or delayed messages, with their number, sorted by name."""

    def stats(queue: str, now: float) -> Answer[QueueStats]:
        """Counts for one queue."""


@dataclass(frozen=True, slots=True)
class Tweet:
    """A microblog message: its id (increasing with time), its author and its text."""

    id: int
    author: str
    text: str


class ITweetStore(Interface):
    """Microblog messages, with an index from each hashtag to the messages that carry it."""

    def post(author: str, text: str, tags: frozenset[str]) -> Answer[int]:
        """Store a message and index it under each of ``tags`` (lower-case, without ``#``).

        Answers its new id, greater than every id before it.
        """

    def last() -> Answer[Tweet | None]:
        """The most recent message, or None when nothing was ever posted."""

    def tagged(tag: str, limit: int) -> Answer[list[Tweet]]:
        """Up to ``limit`` newest messages indexed under ``tag``, newest first.

        Costs in proportion to ``limit``, not to the number of messages stored.
        """


@dataclass(frozen=True, slots=True)
class Account:
    """A forum account: its name as registered and a self-describing salted slow hash."""

    name: str
    password_hash: str


class IAccountStore(Interface):
    """Forum accounts, unique by name ignoring case; passwords only as hashes."""

    def get_account(name: str) -> Answer[Account | None]:
        """The account called ``name`` (ignoring case), or None."""

    def add_account(account: Account) -> Answer[bool]:
        """Store a new account; answers False, storing nothing, if the name is taken."""


@dataclass(frozen=True, slots=True)
class Post:
    """A message in a thread: numbered 1.. among the thread's messages, in posting order."""

    number: int
    user: str
    text: str


@dataclass(frozen=True, slots=True)
class Upload:
    """A file uploaded to a thread; ``blob`` is its key in the file store."""

    user: str
    file: str
    blob: str


class ForumError(Exception):
    """A forum operation that the state does not allow; it changed nothing."""


class NoThread(ForumError):
    """There is no thread with that title."""


class NoMessage(ForumError):
    """The thread has no message with that number."""


class NotOwner(ForumError):
    """Only the author of the message (or the creator of the thread) may do that."""


class FileExists(ForumError):
    """The thread already has a file with that name."""


class IForumStore(Interface):
    """Threads (by exact title), their numbered messages and their uploads, in posting order.

    Every check-and-change is one atomic operation of the store, so concurrent
    clients cannot slip between the check and the change.
    """

    def create_thread(title: str, creator: str) -> Answer[bool]:
        """Create an empty thread; answers False, changing nothing, if the title exists."""

    def titles() -> Answer[list[str]]:
        """Every thread title, oldest thread first."""

    def add_post(title: str, user: str, text: str) -> Answer[int]:
        """Append a message; answers its number. Fails with NoThread."""

    def edit_post(title: str, number: int, user: str, text: str) -> Answer[None]:
        """Replace the text of message ``number``. Fails with NoThread, NoMessage or NotOwner."""

    def delete_post(title: str, number: int, user: str) -> Answer[None]:
        """Delete message ``number``; later messages renumber. Fails with NoThread, NoMessage or NotOwner."""

    def entries(title: str) -> Answer[list[Post | Upload]]:
        """The thread's messages and uploads in posting order. Fails with NoThread."""

    def add_upload(title: str, upload: Upload) -> Answer[None]:
        """Record a file whose bytes are already in the file store. Fails with NoThread or FileExists."""

    def find_upload(title: str, file: str) -> Answer[Upload | None]:
        """The upload called ``file`` in the thread, or None. Fails with NoThread."""

    def remove_thread(title: str, user: str) -> Answer[list[str]]:
        """Delete the thread with its messages and uploads; answers the uploads' blob keys.

        Fails with NoThread or NotOwner (only the creator may remove a thread).
        """


class IBlobStore(Interface):
    """Uploaded files' bytes, by keys the store makes up, never held whole in memory.

    An upload streams into a local part file (``begin``); ``keep`` stores it
    under a new key. A store on this machine's disk answers at once but blocks
    while it syncs (``blocking``: callers run ``keep`` in a thread); a
    networked one answers Deferreds and must be called in the reactor thread.
    """

    blocking = Attribute("True if keep blocks on local I/O and is run in a thread; False if it answers a Deferred")

    def begin() -> PartFile:
        """A new, empty local part file for an upload."""

    def keep(part: PartFile) -> Answer[str]:
        """Store a complete part (and remove the local part file); answers the blob's new key."""

    def open(key: str) -> Answer[tuple[int, BinaryIO]]:
        """The blob's size and an open file to read it from (the caller closes it)."""

    def delete(key: str) -> Answer[None]:
        """Remove a blob; one already gone is fine."""
