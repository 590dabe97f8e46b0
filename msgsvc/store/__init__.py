"""Where state lives, chosen by a ``--store`` URL: ``memory`` or ``sqlite:PATH``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet.interfaces import IReactorTime

from msgsvc.store.blobs import FileStore
from msgsvc.store.interfaces import (
    IAccountStore,
    IDurability,
    IForumStore,
    Immediate,
    IQueueStore,
    ITweetStore,
    StoreError,
)
from msgsvc.store.memory import MemoryAccountStore, MemoryForumStore, MemoryQueueStore, MemoryTweetStore

STORE_URLS = "memory, sqlite:PATH"
DEFAULT_STORE = "sqlite:msgsvc.sqlite"

__all__ = ["DEFAULT_STORE", "STORE_URLS", "StoreError", "Stores", "check_store_url", "open_stores"]


@dataclass(frozen=True)
class Stores:
    """One store per kind of state, all from the same ``--store`` URL."""

    queues: IQueueStore
    tweets: ITweetStore
    accounts: IAccountStore
    forum: IForumStore
    files: FileStore
    """Uploaded forum files (the memory store's live in a temporary directory)."""
    close: Callable[[], None]
    """Commit what is pending and release the stores (at shutdown)."""
    durability: IDurability = field(default_factory=Immediate)
    """When the changes made so far are durable, for holding replies until they are."""


def check_store_url(url: str) -> None:
    """Raise StoreError unless ``url`` names a kind of store msgsvc has."""
    if url != "memory" and not (url.startswith("sqlite:") and url[len("sqlite:") :]):
        raise StoreError(f"unsupported store {url!r}; use one of: {STORE_URLS}")


def open_stores(url: str, clock: IReactorTime) -> Stores:
    """Open the stores a ``--store`` URL names; StoreError with a one-line reason if they cannot be used."""
    check_store_url(url)
    if url == "memory":
        files = FileStore(None)
        return Stores(
            queues=MemoryQueueStore(),
            tweets=MemoryTweetStore(),
            accounts=MemoryAccountStore(),
            forum=MemoryForumStore(),
            files=files,
            close=files.close,
        )
    from msgsvc.store.database import Database
    from msgsvc.store.sqlite import SqliteAccountStore, SqliteForumStore, SqliteQueueStore, SqliteTweetStore

    path = url[len("sqlite:") :]
    db = Database(path, clock)
    files = FileStore(path + ".files", durable=True)
    forum = SqliteForumStore(db)
    files.sweep(keep=forum.blobs())

    def close() -> None:
        db.close()
        files.close()

    return Stores(
        queues=SqliteQueueStore(db),
        tweets=SqliteTweetStore(db),
        accounts=SqliteAccountStore(db),
        forum=forum,
        files=files,
        close=close,
        durability=db,
    )
