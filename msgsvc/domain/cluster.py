# -*- test-case-name: tests.test_cluster -*-
"""Several msgsvc processes (nodes) on one shared store behaving as one server: what the domain needs of them.

:class:`ICluster` is what the broker's systems ask of the other nodes: tell
them something (a queue has a message, a chat line, a tweet), claim a chat
name or a login against every node's clients, keep this node's clients
listed, and count the others'. :class:`SingleNode` is the one-process answer
(the memory and SQLite stores): nothing to tell, every claim granted (the
local rules still apply), no other clients; with it the server behaves
exactly as it does without clustering. The shared implementation is
``cluster_node.SharedCluster`` over the store's ``INodeLink``. What goes
between nodes is a :data:`Notice`, encoded by :func:`encode` (JSON: the store
carries bytes and knows no events).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from msgsvc.domain.events import Chat, Join, Leave, Tweet
from msgsvc.domain.session import Session
from msgsvc.store.answers import Answer


@dataclass(frozen=True)
class QueueReady:
    """A message was sent to ``queue``: receivers waiting on it should look."""

    queue: str


@dataclass(frozen=True)
class Claimed:
    """A forum account logged in and took its name from a guest of another node: that guest loses it."""

    name: str


@dataclass(frozen=True)
class TweetNews:
    """A tweet, for the followers of its tags (or of everything) on every node."""

    tweet: Tweet
    tags: frozenset[str]


Notice = QueueReady | Chat | Join | Leave | TweetNews | Claimed
"""What one node tells the others."""


def encode(notice: Notice) -> bytes:
    """A notice as the bytes another node decodes (names may hold surrogate escapes: JSON keeps them)."""
    match notice:
        case QueueReady(queue):
            fields: list[object] = ["queue", queue]
        case Chat(name, text):
            fields = ["chat", name, text]
        case Join(name):
            fields = ["join", name]
        case Leave(name):
            fields = ["leave", name]
        case Claimed(name):
            fields = ["claimed", name]
        case TweetNews(Tweet(tweet_id, author, text), tags):
            fields = ["tweet", tweet_id, author, text, sorted(tags)]
    return json.dumps(fields).encode("ascii")


def decode(data: bytes) -> Notice:
    """The reverse of :func:`encode`; ValueError if ``data`` is not a notice."""
    fields = json.loads(data)
    match fields:
        case ["queue", str(queue)]:
            return QueueReady(queue)
        case ["chat", str(name), str(text)]:
            return Chat(name, text)
        case ["join", str(name)]:
            return Join(name)
        case ["leave", str(name)]:
            return Leave(name)
        case ["claimed", str(name)]:
            return Claimed(name)
        case ["tweet", int(tweet_id), str(author), str(text), list(tags)]:
            return TweetNews(Tweet(tweet_id, author, text), frozenset(str(tag) for tag in tags))
    raise ValueError(f"not a cluster notice: {data[:80]!r}")


@dataclass(frozen=True)
class Listed:
    """A client of another node, as WHO and STATUS show it (the attributes they read of a Session)."""

    id: str
    """Its id as STATUS shows it: ``<node>.<n>``, its node's tag and its number there (see ``ICluster.client_id``)."""
    display_name: str | None
    transport_name: str
    peer: tuple[str, int]
    opened: float
    sent: int
    closed: None = None


def listing(session: Session) -> str:
    """How a client of this node is listed for the others (see :class:`Listed`)."""
    host, port = session.peer
    return json.dumps(
        [session.id, session.display_name, session.transport_name, host, port, session.opened, session.sent]
    )


def listed(line: str, node: str) -> Listed:
    """The reverse of :func:`listing`, for a client of ``node``."""
    client_id, display, transport, host, port, opened, sent = json.loads(line)
    return Listed(f"{node_tag(node)}.{client_id}", display, transport, (host, port), opened, sent)


def node_tag(node: str) -> str:
    """The short form of a node's id that prefixes its clients' ids in STATUS."""
    return node[:6]


class ICluster(Protocol):
    """The other nodes, as the broker's systems see them."""

    shared: bool
    """Whether other nodes may share the store (so waiting receivers re-check it now and then)."""

    def start(
        self,
        lease: float,
        heard: Callable[[Notice], None],
        reaped: Callable[[list[str]], None],
        lost: Callable[[], None],
    ) -> None:
        """Join the cluster: ``heard`` gets the other nodes' notices, ``reaped`` the names of dead nodes' clients,
        ``lost`` is called if this node was taken for dead (its names and logins were freed)."""

    def stop(self) -> None:
        """Stop taking part (at shutdown)."""

    def tell(self, notice: Notice) -> None:
        """Tell every other node (failures are logged: nobody waits for it)."""

    def claim_name(self, session: Session, name: str) -> Answer[bool]:
        """Take ``name`` for ``session`` across nodes; False if a client of another node holds it."""

    def take_name(self, session: Session, name: str) -> Answer[bool]:
        """Give ``name`` to ``session`` (logged in to that account) even from another; True if another node's had it."""

    def release_name(self, session: Session, name: str) -> None:
        """``session`` no longer uses ``name``."""

    def claim_login(self, session: Session, account: str) -> Answer[bool]:
        """Log ``session`` in to ``account`` across nodes; False if a client of another node is."""

    def release_login(self, session: Session, account: str) -> None:
        """``session`` logged out of ``account`` (or left)."""

    def client_changed(self, session: Session, line: str) -> None:
        """``session`` (of this node) is listed as ``line`` (opened, or renamed)."""

    def client_gone(self, session: Session) -> None:
        """``session`` (of this node) has gone."""

    def other_clients(self) -> int:
        """The clients of the other nodes (as of the last heartbeat: up to a lease/3 old)."""

    def others_listed(self) -> Answer[list[Listed]]:
        """The other nodes' connected clients (STATUS shows no gone ones of other nodes)."""

    def client_id(self, session: Session) -> str:
        """A client of this node's id as STATUS shows it: unique across the nodes."""


class SingleNode:
    """One process alone: no other node to tell, claims granted, nobody else listed."""

    shared = False

    def start(
        self,
        lease: float,
        heard: Callable[[Notice], None],
        reaped: Callable[[list[str]], None],
        lost: Callable[[], None],
    ) -> None:
        """Nothing to join."""

    def stop(self) -> None:
        """Nothing to leave."""

    def tell(self, notice: Notice) -> None:
        """Nobody to tell."""

    def claim_name(self, session: Session, name: str) -> Answer[bool]:
        """Granted: the chat room's own rules decide."""
        return True

    def take_name(self, session: Session, name: str) -> Answer[bool]:
        """Nobody elsewhere had it."""
        return False

    def release_name(self, session: Session, name: str) -> None:
        """Nothing held elsewhere."""

    def claim_login(self, session: Session, account: str) -> Answer[bool]:
        """Granted: the realm's own rules decide."""
        return True

    def release_login(self, session: Session, account: str) -> None:
        """Nothing held elsewhere."""

    def client_changed(self, session: Session, line: str) -> None:
        """Nobody else lists it."""

    def client_gone(self, session: Session) -> None:
        """Nobody else lists it."""

    def other_clients(self) -> int:
        """No other node."""
        return 0

    def others_listed(self) -> Answer[list[Listed]]:
        """No other node."""
        return []

    def client_id(self, session: Session) -> str:
        """Its number: unique in this one process."""
        return str(session.id)
