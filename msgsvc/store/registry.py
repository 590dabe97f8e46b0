# -*- test-case-name: tests.test_store_registry -*-
"""The kinds of store, by the scheme of their ``--store`` URL (``memory``, ``sqlite:PATH``, ...).

A kind of store registers its scheme, how its URL reads (for help and error
texts), its opener: a function ``(url, clock) -> Stores``, or the
``"module:function"`` name of one, imported only when a store of that kind is
opened (so a store whose client library is not installed costs nothing until
it is asked for), and optionally a check of its URLs, named alike. Adding a
kind of store is one module and one registration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from msgsvc.store.interfaces import (
    IAccountStore,
    IBlobStore,
    IDurability,
    IForumStore,
    Immediate,
    IQueueStore,
    ITweetStore,
    StoreError,
)
from msgsvc.store.nodes import INodeLink


@dataclass(frozen=True)
class Stores:
    """One store per kind of state, all from the same ``--store`` URL."""

    queues: IQueueStore
    tweets: ITweetStore
    accounts: IAccountStore
    forum: IForumStore
    files: IBlobStore
    """Uploaded forum files (the memory store's live in a temporary directory)."""
    close: Callable[[], Deferred[None] | None]
    """Commit what is pending and release the stores (at shutdown); a Deferred if that ends later."""
    durability: IDurability = field(default_factory=Immediate)
    """When the changes made so far are durable, for holding replies until they are."""
    cluster: INodeLink | None = None
    """The link to the other processes sharing the store (Redis); None: this process is alone (a single node)."""


Opener = Callable[[str, IReactorTime], Stores]
"""Opens the stores a URL names; raises StoreError with a one-line reason if they cannot be used."""


Check = Callable[[str], object]
"""Raises StoreError with a one-line reason if a URL of its kind is malformed."""


@dataclass(frozen=True)
class _Kind:
    usage: str
    opener: Opener | str
    takes_argument: bool
    check: Check | str | None


_kinds: dict[str, _Kind] = {}


def register(
    scheme: str, opener: Opener | str, usage: str, takes_argument: bool = True, check: Check | str | None = None
) -> None:
    """Open URLs of ``scheme`` with ``opener``; ``usage`` shows how they read (``sqlite:PATH``).

    With ``takes_argument`` a URL is ``<scheme>:<something>``, else exactly
    ``<scheme>``; ``check``, if given, checks the rest of it.
    """
    _kinds[scheme] = _Kind(usage, opener, takes_argument, check)


def unregister(scheme: str) -> None:
    """Forget a kind of store (for tests that registered one)."""
    del _kinds[scheme]


def store_urls() -> str:
    """How the URLs of every registered kind read, for help and error texts."""
    return ", ".join(kind.usage for kind in _kinds.values())


def check_store_url(url: str) -> None:
    """Raise StoreError unless ``url`` names a kind of store msgsvc has, in a well-formed URL."""
    check = _kind_of(url).check
    if check is not None:
        _resolve(check)(url)


def open_stores(url: str, clock: IReactorTime) -> Stores:
    """Open the stores a ``--store`` URL names; StoreError with a one-line reason if they cannot be used."""
    return _resolve(_kind_of(url).opener)(url, clock)


def _resolve(function: Callable | str) -> Callable:
    """A function, or the one a ``"module:function"`` name names (importing its module)."""
    if isinstance(function, str):
        module, _, name = function.partition(":")
        return getattr(import_module(module), name)
    return function


def _kind_of(url: str) -> _Kind:
    scheme, colon, argument = url.partition(":")
    kind = _kinds.get(scheme)
    if kind is None or not (argument if kind.takes_argument else not colon):
        raise StoreError(f"unsupported store {url!r}; use one of: {store_urls()}")
    return kind
