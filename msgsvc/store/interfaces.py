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
class Account:
    """A forum account: its name as registered and a self-describing salted slow hash."""

    name: str
    password_hash: str


class IAccountStore(Interface):
    """Forum accounts, unique by name ignoring case; passwords only as hashes."""

    def get_account(name: str) -> Deferred[Account | None]:
        """The account called ``name`` (ignoring case), or None."""

    def add_account(account: Account) -> Deferred[bool]:
        """Store a new account; fires with False, storing nothing, if the name is taken."""


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

    def create_thread(title: str, creator: str) -> Deferred[bool]:
        """Create an empty thread; fires with False, changing nothing, if the title exists."""

    def titles() -> Deferred[list[str]]:
        """Every thread title, oldest thread first."""

    def add_post(title: str, user: str, text: str) -> Deferred[int]:
        """Append a message; fires with its number. Fails with NoThread."""

    def edit_post(title: str, number: int, user: str, text: str) -> Deferred[None]:
        """Replace the text of message ``number``. Fails with NoThread, NoMessage or NotOwner."""

    def delete_post(title: str, number: int, user: str) -> Deferred[None]:
        """Delete message ``number``; later messages renumber. Fails with NoThread, NoMessage or NotOwner."""

    def entries(title: str) -> Deferred[list[Post | Upload]]:
        """The thread's messages and uploads in posting order. Fails with NoThread."""

    def add_upload(title: str, upload: Upload) -> Deferred[None]:
        """Record a file whose bytes are already in the file store. Fails with NoThread or FileExists."""

    def find_upload(title: str, file: str) -> Deferred[Upload | None]:
        """The upload called ``file`` in the thread, or None. Fails with NoThread."""

    def remove_thread(title: str, user: str) -> Deferred[list[str]]:
        """Delete the thread with its messages and uploads; fires with the uploads' blob keys.

        Fails with NoThread or NotOwner (only the creator may remove a thread).
        """
