"""What a store shared by several msgsvc processes (nodes) offers them for live state, as plain values.

The memory and SQLite stores are one process's own: their ``Stores.cluster``
is None and the domain runs as a single node. A shared store (Redis) gives an
:class:`INodeLink`: this node's id and lease, a channel to the other nodes
(bytes in, bytes out: the domain encodes its events), and claims on names and
logins that only one node's client may hold at a time. The store knows no
events and no sessions: holders are text the domain makes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from twisted.internet.defer import Deferred

NAMES = "names"
"""Chat names, by folded name."""
LOGINS = "logins"
"""Logged-in forum accounts, by folded account name."""


class INodeLink(Protocol):
    """One node's link to the others sharing its store."""

    node: str
    """This node's random id."""
    others: int
    """The clients of the other live nodes, as counted at the last heartbeat."""

    def start(
        self,
        lease: float,
        heard: Callable[[bytes], None],
        reaped: Callable[[list[str]], None],
        lost: Callable[[], None],
    ) -> None:
        """Register, heartbeat every lease/3 (every second at least) and listen.

        ``heard`` gets the other nodes' publications, ``reaped`` the chat names of the clients of nodes found dead,
        ``lost`` is called when this node finds it was itself reaped (it stalled past its lease): its claims are gone.
        """

    def stop(self) -> Deferred[None] | None:
        """Stop the heartbeat and listening, and drop this node's registration."""

    def publish(self, payload: bytes) -> Deferred[object]:
        """Send ``payload`` to every other node."""

    def claim(self, kind: str, key: str, holder: str, label: str) -> Deferred[bool]:
        """Take ``key`` of ``kind`` for ``holder`` (again, if it holds it already); False if another holds it."""

    def take(self, kind: str, key: str, holder: str, label: str) -> Deferred[bool]:
        """Take ``key`` of ``kind`` for ``holder`` even from another; True if a client of another node held it."""

    def release(self, kind: str, key: str, holder: str) -> Deferred[object]:
        """Free ``key`` if ``holder`` holds it."""

    def set_client(self, client: str, line: str) -> Deferred[object]:
        """Describe one of this node's clients (for the listings of every node)."""

    def drop_client(self, client: str) -> Deferred[object]:
        """One of this node's clients has gone."""

    def clients(self) -> Deferred[list[tuple[str, str]]]:
        """Every live node's clients as (node, line), this node's included."""
