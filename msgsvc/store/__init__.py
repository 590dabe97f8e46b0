"""Where state lives, chosen by a ``--store`` URL."""

from __future__ import annotations

from dataclasses import dataclass

from msgsvc.store.interfaces import IQueueStore, ITweetStore
from msgsvc.store.memory import MemoryQueueStore, MemoryTweetStore

STORE_URLS = "memory"


class StoreError(Exception):
    """The store named on the command line cannot be used; the message says why."""


@dataclass(frozen=True)
class Stores:
    """One store per kind of state, all from the same ``--store`` URL."""

    queues: IQueueStore
    tweets: ITweetStore


def open_stores(url: str) -> Stores:
    """Open the stores a ``--store`` URL names."""
    if url == "memory":
        return Stores(queues=MemoryQueueStore(), tweets=MemoryTweetStore())
    raise StoreError(f"unsupported store {url!r}; supported: {STORE_URLS}")
