"""Where state lives, chosen by a ``--store`` URL."""

from __future__ import annotations

from dataclasses import dataclass

from msgsvc.store.files import FileStore
from msgsvc.store.interfaces import IAccountStore, IForumStore, IQueueStore
from msgsvc.store.memory import MemoryAccountStore, MemoryForumStore, MemoryQueueStore

STORE_URLS = "memory"


class StoreError(Exception):
    """The store named on the command line cannot be used; the message says why."""


@dataclass(frozen=True)
class Stores:
    """One store per kind of state, all from the same ``--store`` URL."""

    queues: IQueueStore
    accounts: IAccountStore
    forum: IForumStore
    files: FileStore
    """Uploaded forum files; the memory store's live in a temporary directory."""

    def close(self) -> None:
        """Release what the stores hold (the memory store's file directory is removed)."""
        self.files.close()


def open_stores(url: str) -> Stores:
    """Open the stores a ``--store`` URL names."""
    if url == "memory":
        return Stores(
            queues=MemoryQueueStore(),
            accounts=MemoryAccountStore(),
            forum=MemoryForumStore(),
            files=FileStore(None),
        )
    raise StoreError(f"unsupported store {url!r}; supported: {STORE_URLS}")
