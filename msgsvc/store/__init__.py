"""Where state lives, chosen by a ``--store`` URL whose scheme names the kind of store (see ``registry``)."""

from __future__ import annotations

from msgsvc.store.interfaces import StoreError
from msgsvc.store.registry import Stores, check_store_url, open_stores, register, store_urls

register("memory", "msgsvc.store.memory:open_stores", "memory", takes_argument=False)
register("sqlite", "msgsvc.store.sqlite:open_stores", "sqlite:PATH")
register(
    "redis",
    "msgsvc.store.redis_stores:open_stores",
    "redis://HOST:PORT/DB",
    check="msgsvc.store.redis_connection:parse_url",
)

STORE_URLS = store_urls()
"""How the URLs of the kinds of store read: ``memory, sqlite:PATH, redis://HOST:PORT/DB``."""
DEFAULT_STORE = "sqlite:msgsvc.sqlite"

__all__ = ["DEFAULT_STORE", "STORE_URLS", "StoreError", "Stores", "check_store_url", "open_stores", "register"]
