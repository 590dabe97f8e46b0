# -*- test-case-name: tests.test_cluster -*-
"""The cluster over a shared store (Redis): :class:`SharedCluster`, and :class:`NodeWiring`, a node's part in it.

SharedCluster implements ``cluster.ICluster`` over the store's ``INodeLink``:
notices are encoded here and travel as bytes; a chat name or login is held as
``<session id>`` of this node (the store prefixes the node's id). NodeWiring
hands what the other nodes tell to this node's systems: a queue that got a
message wakes its local waiting receivers, a chat event reaches the local
members, a tweet the local followers; the names of a dead node's clients
leave (announced here and told to the others). :class:`ReadyQueues` tells the
others which queues got a message, once per queue per reactor turn. And since
a publication can be lost (the listening connection was down), every second
the queues that have local waiting receivers are looked at again (at most
:data:`RECHECKED` of them).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from msgsvc.domain.cluster import (
    Claimed,
    ICluster,
    Listed,
    Notice,
    QueueReady,
    TweetNews,
    decode,
    encode,
    listed,
    node_tag,
)
from msgsvc.domain.events import Chat, Join, Leave
from msgsvc.domain.session import Session
from msgsvc.store.answers import Answer
from msgsvc.store.nodes import LOGINS, NAMES, INodeLink
from msgsvc.turns import turn_end

if TYPE_CHECKING:
    from msgsvc.domain.chat import ChatRoom
    from msgsvc.domain.microblog import Microblog
    from msgsvc.domain.queues import QueueService

log = Logger()

RECHECK = 1.0
"""Seconds between looks at the queues with local waiting receivers (for lost notices)."""
RECHECKED = 1000
"""Queues looked at again per RECHECK at most."""


def _logged(failure: Failure) -> None:
    log.failure("cluster operation failed", failure, category="ERROR")


class SharedCluster:
    """``ICluster`` over a shared store's link to the other nodes."""

    shared = True

    def __init__(self, link: INodeLink) -> None:
        self.link = link

    def start(
        self,
        lease: float,
        heard: Callable[[Notice], None],
        reaped: Callable[[list[str]], None],
        lost: Callable[[], None],
    ) -> None:
        """Join: heartbeat, reap, listen."""

        def hear(data: bytes) -> None:
            try:
                notice = decode(data)
            except ValueError:
                log.warn("ignored a malformed cluster notice", category="ERROR")
                return
            heard(notice)

        self.link.start(lease, hear, reaped, lost)

    def stop(self) -> None:
        """The link stops with the stores (it must outlive the last clients' releases)."""

    def tell(self, notice: Notice) -> None:
        """Publish ``notice`` to the other nodes."""
        self.link.publish(encode(notice)).addErrback(_logged)

    def claim_name(self, session: Session, name: str) -> Answer[bool]:
        """Claim ``name`` in the store for ``session``."""
        return self.link.claim(NAMES, name.casefold(), str(session.id), name)

    def take_name(self, session: Session, name: str) -> Answer[bool]:
        """Take ``name`` for ``session`` from whoever holds it."""
        return self.link.take(NAMES, name.casefold(), str(session.id), name)

    def release_name(self, session: Session, name: str) -> None:
        """Free ``name`` if ``session`` holds it."""
        self.link.release(NAMES, name.casefold(), str(session.id)).addErrback(_logged)

    def claim_login(self, session: Session, account: str) -> Answer[bool]:
        """Claim ``account``'s login for ``session``."""
        return self.link.claim(LOGINS, account.casefold(), str(session.id), account)

    def release_login(self, session: Session, account: str) -> None:
        """Free ``account``'s login if ``session`` holds it."""
        self.link.release(LOGINS, account.casefold(), str(session.id)).addErrback(_logged)

    def client_changed(self, session: Session, line: str) -> None:
        """List ``session`` as ``line``."""
        self.link.set_client(str(session.id), line).addErrback(_logged)

    def client_gone(self, session: Session) -> None:
        """Unlist ``session``."""
        self.link.drop_client(str(session.id)).addErrback(_logged)

    def other_clients(self) -> int:
        """The other nodes' clients at the last heartbeat."""
        return self.link.others

    def others_listed(self) -> Answer[list[Listed]]:
        """The other live nodes' clients."""
        mine = self.link.node
        return self.link.clients().addCallback(
            lambda pairs: [listed(line, node) for node, line in pairs if node != mine]
        )

    def client_id(self, session: Session) -> str:
        """``<node>.<n>``: each node numbers its clients from 1, so its tag tells them apart."""
        return f"{node_tag(self.link.node)}.{session.id}"


class ReadyQueues:
    """Tells the other nodes that a queue got a message: once per queue at the end of the reactor turn.

    A burst of SENDs (50 clients, 32 pipelined each) to one queue is one
    publication, not one per message; a receiver waiting on another node
    learns of the message in the same turn either way.
    """

    def __init__(self, cluster: ICluster, clock: IReactorTime) -> None:
        self._cluster = cluster
        self._clock = clock
        self._queues: dict[str, None] = {}
        """The queues sent to this turn, in order (a dict: ordered and unique)."""

    def announce(self, queue: str) -> None:
        """``queue`` got a message."""
        if not self._queues:
            turn_end(self._clock).later(self._tell)
        self._queues[queue] = None

    def _tell(self) -> None:
        queues, self._queues = self._queues, {}
        for queue in queues:
            self._cluster.tell(QueueReady(queue))


class NodeWiring:
    """Hands the other nodes' notices to this node's systems; re-checks waiting receivers."""

    def __init__(
        self,
        cluster: ICluster,
        clock: IReactorTime,
        queues: QueueService,
        chat: ChatRoom,
        microblog: Microblog,
        claim_again: Callable[[str], None],
    ) -> None:
        """``claim_again(reason)`` claims this node's clients' names and logins again, closing (with ``reason``)
        those another node took meanwhile: for when this node finds it was taken for dead."""
        self._claim_again = claim_again
        self._cluster = cluster
        self._queues = queues
        self._chat = chat
        self._microblog = microblog
        self._recheck = LoopingCall(self.recheck)
        self._recheck.clock = clock

    def start(self, lease: float) -> None:
        """Join the cluster (and, if the store is shared, re-check waiting receivers every second)."""
        self._cluster.start(lease, self.heard, self.reaped, self.lost)
        if self._cluster.shared:
            self._recheck.start(RECHECK, now=False)

    def stop(self) -> None:
        """Stop re-checking and leave the cluster."""
        if self._recheck.running:
            self._recheck.stop()
        self._cluster.stop()

    def heard(self, notice: Notice) -> None:
        """Another node told this one something: hand it to the system concerned."""
        if isinstance(notice, QueueReady):
            if notice.queue in self._queues.receivers.lines:
                self._queues.receivers.wake(notice.queue)
        elif isinstance(notice, TweetNews):
            self._microblog.tell_local(notice.tweet, notice.tags)
        elif isinstance(notice, Claimed):
            self._chat.lose(notice.name)
        elif isinstance(notice, Chat | Join | Leave):
            self._chat.deliver(notice)

    def lost(self) -> None:
        """This node was reaped while alive (it stalled past its lease, or Redis lost its data): its clients'
        claims were dropped, so they are made again; a client whose name or login went to another node meanwhile
        gets ``* BYE node-lease-lost``."""
        log.error(
            "this node was taken for dead (stalled past --node-lease?): claiming its clients again", category="ERROR"
        )
        self._claim_again("node-lease-lost")

    def reaped(self, names: list[str]) -> None:
        """A dead node's clients held ``names``: they leave, here and on the other nodes."""
        for name in names:
            leave = Leave(name)
            self._chat.deliver(leave)
            self._cluster.tell(leave)

    def recheck(self) -> None:
        """Wake the receivers of the queues with local waiters (a notice may have been lost)."""
        receivers = self._queues.receivers
        for queue in list(islice(receivers.lines, RECHECKED)):
            receivers.wake(queue)
