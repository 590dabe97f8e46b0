# -*- test-case-name: tests.test_broker -*-
"""The broker: the one object that owns every messaging system and every client.

It knows clients only through :class:`msgsvc.domain.interfaces.IClient`; the TCP and
UDP front ends register their clients here and hand every command to the
command table, whose handlers call into the broker's systems.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from itertools import count

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from msgsvc.config import Config
from msgsvc.domain.accounts.realm import ThreadRunner
from msgsvc.domain.chat import ChatRoom
from msgsvc.domain.cluster import ICluster, SingleNode, listing
from msgsvc.domain.cluster_node import NodeWiring, ReadyQueues, SharedCluster
from msgsvc.domain.diagnostics import Diagnostics
from msgsvc.domain.forum import Forum
from msgsvc.domain.interfaces import IClient
from msgsvc.domain.microblog import Microblog
from msgsvc.domain.queues import QueueService
from msgsvc.domain.session import DEPARTED, Session
from msgsvc.domain.shelf import FileShelf
from msgsvc.store import Stores
from msgsvc.store.answers import then

log = Logger()

SHUTDOWN_GRACE = 2.0
"""Seconds to wait for clients to take their ``* BYE shutdown`` before stopping anyway."""


class Broker:
    """All messaging state and logic, shared by every transport."""

    def __init__(
        self, stores: Stores, config: Config, clock: IReactorTime, run_in_thread: ThreadRunner = deferToThread
    ) -> None:
        """``run_in_thread`` runs slow blocking work (password hashing, syncing uploads) off the event loop."""
        self.config = config
        self.clock = clock
        self.stores = stores
        self.durability = stores.durability
        """When the changes made so far are durable: replies that follow changes wait for it."""
        self.cluster: ICluster = SingleNode() if stores.cluster is None else SharedCluster(stores.cluster)
        """The other nodes on the same store, if it is shared (see ``cluster``)."""
        self.queues = QueueService(stores.queues, clock, config.ttr, config.max_deliveries)
        self.chat = ChatRoom(self.cluster)
        if self.cluster.shared:
            self.queues.announce = ReadyQueues(self.cluster, clock).announce
            self.chat.changed = self._list
        self.files = FileShelf(config.files)
        self._sessions: dict[int, Session] = {}
        self._gone: deque[Session] = deque(maxlen=config.history)
        self._ids = count(1)
        self._on_close: list[Callable[[Session], None]] = [self.queues.session_closed, self.chat.session_closed]
        self.microblog = Microblog(stores.tweets, stores.durability.confirm)
        self.microblog.cluster = self.cluster
        self.diagnostics = Diagnostics(clock)
        self._on_close += [self.microblog.session_closed, self.diagnostics.session_closed]
        self.forum = Forum(stores, config, clock, self.chat, run_in_thread)
        self._on_close.append(self.forum.session_closed)
        self._stopped: Deferred[None] | None = None
        self._grace: IDelayedCall | None = None
        self.node = NodeWiring(self.cluster, clock, self.queues, self.chat, self.microblog, self._claim_again)
        """This node's part in the cluster: hears the others, re-checks waiting receivers."""
        self.node.start(config.node_lease)

    def _claim_again(self, reason: str) -> None:
        """This node was taken for dead (it stalled past its lease, or Redis lost its data): list its clients and
        claim their names and logins again; a client whose name or login another node took meanwhile is closed."""
        for session in self.sessions:
            self._list(session)
            claims = [] if session.name is None else [self.cluster.claim_name(session, session.name)]
            if session.account is not None:
                claims.append(self.cluster.claim_login(session, session.account))
            for claim in claims:
                kept = then(claim, self._keep_or_close, session, reason)
                if isinstance(kept, Deferred):
                    kept.addErrback(lambda failure: log.failure("claiming again", failure, category="ERROR"))

    @staticmethod
    def _keep_or_close(held: bool, session: Session, reason: str) -> None:
        if not held and session.open:
            session.client.close(reason)

    @property
    def sessions(self) -> list[Session]:
        """The connected clients that hold a slot, oldest first."""
        return list(self._sessions.values())

    def open_session(self, client: IClient) -> Session | None:
        """Admit a TCP connection or UDP session; None when ``--max-clients`` is reached."""
        host, port = client.peer
        cap = self.config.max_clients
        # The other nodes' clients as of the last heartbeat (lease/3 old at most): admission stays synchronous.
        if self._stopped is not None or (cap and len(self._sessions) + self.cluster.other_clients() >= cap):
            log.info(
                "refused {transport} client {host}:{port}: server is full",
                transport=client.transport_name,
                host=host,
                port=port,
                category="CONNECTION",
            )
            return None
        session = Session(next(self._ids), client, self.clock.seconds())
        self._sessions[session.id] = session
        self._list(session)
        log.info(
            "client {id} connected over {transport} from {host}:{port}",
            id=session.id,
            transport=client.transport_name,
            host=host,
            port=port,
            category="CONNECTION",
        )
        return session

    def _list(self, session: Session) -> None:
        """Show the other nodes this client as it is now (WHO, STATUS, their client count)."""
        if self.cluster.shared and session.open:
            self.cluster.client_changed(session, listing(session))

    @property
    def clients_of_run(self) -> list[Session]:
        """Every client of this run, connected or gone (the last ``--history`` gone ones), by id."""
        return sorted([*self._gone, *self._sessions.values()], key=lambda session: session.id)

    def one_off_session(self, client: IClient) -> Session:
        """A context for one request from a client the front end does not keep (a lone datagram)."""
        return Session(0, client, self.clock.seconds(), lasting=False)

    def close_session(self, session: Session) -> None:
        """The client is gone: free its slot and release everything it held."""
        if not session.open:
            return
        session.closed = self.clock.seconds()
        session.client = DEPARTED  # the STATUS history must not keep connections alive
        if session.lasting:
            del self._sessions[session.id]
            self._gone.append(session)
            log.info("client {id} disconnected", id=session.id, category="CONNECTION")
            if self.cluster.shared:
                self.cluster.client_gone(session)
        for release in self._on_close:
            release(session)
        if self._stopped is not None and not self._sessions:
            self._all_gone()

    def shutdown(self) -> Deferred[None]:
        """Tell every client ``* BYE shutdown``; fires once they are gone (or after a grace period)."""
        if self._stopped is None:
            self._stopped = Deferred()
            self.node.stop()
            for session in self.sessions:
                session.client.close("shutdown")
            if self._sessions:
                self._grace = self.clock.callLater(SHUTDOWN_GRACE, self._all_gone)
            else:
                self._all_gone()
        return self._stopped

    def _all_gone(self) -> None:
        if self._grace is not None and self._grace.active():
            self._grace.cancel()
        if self._sessions:
            log.warn("{n} clients still connected at shutdown", n=len(self._sessions), category="CONNECTION")
        assert self._stopped is not None  # set by stop(), the only one to schedule this
        if not self._stopped.called:
            self._stopped.callback(None)
