# -*- test-case-name: tests.test_tap,tests.test_startup -*-
"""Starting the application in the process that serves, and trying it first in the one that forks.

twistd builds the service (``makeService``) before it daemonizes, then calls
``privilegedStartService`` in the daemon. The store's lock must belong to the
daemon, so the store opens and the broker is built there
(:class:`StartupService`); a failure then raises :class:`StartupError`, which
twistd hands to the waiting parent. Before that, :func:`preflight` tries the
store and the port from the command's own process, so that the usual failures
(a taken port, a store in use) end the command at once with one plain line.
"""

from __future__ import annotations

import gc
import socket
from typing import Any, Protocol

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from msgsvc.config import Config
from msgsvc.dispatch.verbs import build_table
from msgsvc.domain.broker import Broker
from msgsvc.store import StoreError, open_stores
from msgsvc.transports.endpoints import ListenSpec
from msgsvc.transports.input_budget import InputBudget
from msgsvc.transports.listeners import ListenerService, StartupError, startup_error
from msgsvc.transports.tcp import ConnectionFactory
from msgsvc.transports.udp import DatagramFrontEnd
from msgsvc.web.service import WebService, listening_address
from msgsvc.web.site import build_site


class StartOptions(Protocol):
    """What starting needs of ``twistd msgsvc``'s options (:class:`msgsvc.tap.Options`)."""

    credentials: list[tuple[str, str]]
    """The ``--credentials`` accounts still to import (emptied once they are)."""
    listens: list[ListenSpec]
    """The ``--listen`` endpoints."""

    def __getitem__(self, name: str) -> Any: ...

    def config(self) -> Config: ...


log = Logger()


def preflight(options: StartOptions, reactor: IReactorTime) -> None:
    """Open and close the store, bind and release the ports; StartupError if any cannot be had.

    The daemon opens and binds them again for itself; this only tells the
    common failures before twistd forks.
    """
    try:
        open_stores(options["store"], reactor).close()
    except StoreError as error:
        raise StartupError(str(error)) from None
    if options["port"]:
        check_port(options["interface"], options["port"], tcp=not options["no-tcp"], udp=not options["no-udp"])
    for spec in options.listens:
        if spec.port:
            check_port(spec.interface, spec.port, tcp=True, udp=False)
    web = listening_address(options["web"]) if options["web"] is not None else None
    if web is not None and web[1]:
        check_port(web[0], web[1], tcp=True, udp=False)


def check_port(interface: str, port: int, tcp: bool, udp: bool) -> None:
    """Raise StartupError unless ``interface:port`` can be bound for TCP and/or UDP now."""
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    for kind, wanted in ((socket.SOCK_STREAM, tcp), (socket.SOCK_DGRAM, udp)):
        if not wanted:
            continue
        with socket.socket(family, kind) as probe:
            if kind == socket.SOCK_STREAM:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Twisted's TCP ports do
            try:
                probe.bind((interface, port))
            except OSError as error:
                raise StartupError(f"cannot listen on {interface}:{port}: {error.strerror}") from None


class BrokerService(Service):
    """Runs the broker with the application: on stop, every client gets ``* BYE shutdown``, then the store closes.

    Its ``broker`` is None until the application starts (see :class:`StartupService`).
    """

    def __init__(self, broker: Broker | None = None) -> None:
        self.broker = broker

    def stopService(self) -> Deferred[None]:
        super().stopService()
        broker = self.broker
        if broker is None:
            return succeed(None)
        return broker.shutdown().addBoth(lambda _: broker.stores.close())


class StartupService(Service):
    """Opens the store and builds the broker and its front ends when the application starts.

    twistd calls ``privilegedStartService`` in the process that serves: after it
    has daemonized, before the reactor runs. So the store's lock belongs to the
    daemon itself, and a store that cannot be used raises :class:`StartupError`,
    which twistd reports (a daemon's parent prints it and exits non-zero).
    It is the first child: the listeners bind right after it.
    """

    def __init__(
        self,
        options: StartOptions,
        reactor: IReactorTime,
        listeners: ListenerService,
        broker: BrokerService,
        web: WebService | None = None,
    ) -> None:
        self.options = options
        self.reactor = reactor
        self.listeners = listeners
        self.broker_service = broker
        self.web = web

    def privilegedStartService(self) -> None:
        """twistd's start, in the process that serves (tests call ``startService`` alone)."""
        super().privilegedStartService()
        self._open()
        tune_collector()

    def startService(self) -> None:
        if self.broker_service.broker is None:  # not started by twistd, which calls privilegedStartService first
            self._open()
        super().startService()

    def _open(self) -> None:
        options = self.options
        try:
            stores = open_stores(options["store"], self.reactor)
        except StoreError as error:
            raise startup_error(str(error)) from None
        broker = Broker(stores, options.config(), self.reactor)
        if options.credentials:
            _import_credentials(broker, options)
        table = build_table(self.reactor)
        budget = InputBudget(broker.config.max_pending_input)  # unfinished input of every transport together
        connections = ConnectionFactory(broker, table, self.reactor, budget)
        self.listeners.tcp = None if options["no-tcp"] else connections
        self.listeners.stream = connections
        udp = self.listeners.udp = None if options["no-udp"] else DatagramFrontEnd(broker, table, self.reactor, budget)
        if self.web is not None:
            self.web.site = build_site(broker, table, self.reactor, connections, udp)
        self.broker_service.broker = broker


def _import_credentials(broker: Broker, options: StartOptions) -> None:
    """Hash and store the ``--credentials`` accounts before the port opens; forget the plaintext."""
    pairs, options.credentials = options.credentials, []
    path = options["credentials"]
    done = broker.forum.accounts.import_credentials(pairs)
    done.addCallbacks(
        lambda counts: log.info(
            "imported {added} forum accounts from {path} ({kept} already present, left unchanged)",
            added=counts[0],
            kept=counts[1],
            path=path,
            category="GENERAL",
        ),
        lambda failure: log.failure("could not import {path}", failure, path=path, category="ERROR"),
    )


COLLECTOR_THRESHOLDS = (50_000, 20, 100)
"""Allocations between collections of the youngest generation, and collections between those of the older two."""


def tune_collector() -> None:
    """Keep Python's cyclic garbage collector cheap while thousands of requests are in flight.

    Everything made at start-up is frozen (never scanned again), and the youngest
    generation is collected every 50,000 allocations instead of 700. With the
    defaults, requests waiting on Redis (a few tracked objects each until answered)
    reached the oldest generation, whose full collections took 25-50% of the CPU
    at C=50 P=32 (see docs/performance.md). msgsvc frees its objects by reference
    counting; only reference cycles wait for the collector.
    """
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
