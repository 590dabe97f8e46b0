# -*- test-case-name: tests.test_tap -*-
"""``twistd msgsvc``: command-line options and the service they build."""

from __future__ import annotations

from twisted.application.service import IServiceCollection, MultiService, Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python import usage

from msgsvc.accounts import read_credentials
from msgsvc.broker import Broker
from msgsvc.config import Config
from msgsvc.listeners import ListenerService
from msgsvc.store import STORE_URLS, StoreError, Stores, open_stores
from msgsvc.tcp import ConnectionFactory
from msgsvc.udp import DatagramFrontEnd
from msgsvc.verbs import build_table

log = Logger()


def _non_negative(kind: type) -> object:
    def convert(text: str) -> int | float:
        value = kind(text)
        if value < 0:
            raise ValueError(f"must not be negative: {text}")
        return value

    convert.coerceDoc = "Must not be negative."
    return convert


class Options(usage.Options):
    """Options of ``twistd msgsvc``."""

    synopsis = "[options]"
    longdesc = (
        "A message queue, chat room, forum, microblog and echo/stream diagnostics "
        "on one port over TCP and UDP. Try it with: nc 127.0.0.1 55556"
    )
    optFlags = [
        ["no-udp", None, "Serve TCP only."],
        ["no-tcp", None, "Serve UDP only."],
    ]
    optParameters = [
        ["port", "p", 55556, "TCP and UDP port number (0 picks a free one; the log says which).", int],
        ["interface", "i", "127.0.0.1", "Address to listen on (0.0.0.0 or :: for all)."],
        ["max-clients", None, 3, "Cap on TCP connections plus UDP sessions; 0 = no cap.", _non_negative(int)],
        ["idle-timeout", None, 600.0, "Seconds before an idle TCP connection or UDP session is closed.", float],
        ["max-message", None, 1048576, "Largest payload (message, literal) accepted, in bytes.", int],
        ["max-line", None, 8192, "Longest command line accepted, in bytes.", int],
        ["store", None, "memory", f"Where state lives: {STORE_URLS}."],
        ["max-upload", None, 67108864, "Largest forum upload accepted, in bytes.", int],
        ["credentials", None, None, "Import forum accounts from a 'username password' file at start (stored hashed)."],
    ]

    def postOptions(self) -> None:
        if self["no-udp"] and self["no-tcp"]:
            raise usage.UsageError("--no-udp and --no-tcp together leave nothing to serve")
        if not 0 <= self["port"] <= 65535:
            raise usage.UsageError(f"--port must be from 0 to 65535, not {self['port']}")
        if not self["idle-timeout"] > 0:
            raise usage.UsageError("--idle-timeout must be positive")
        for name in ("max-message", "max-line"):
            if self[name] < 1:
                raise usage.UsageError(f"--{name} must be at least 1")
        if self["max-upload"] < 1:
            raise usage.UsageError("--max-upload must be at least 1")
        self.credentials: list[tuple[str, str]] = []
        if self["credentials"] is not None:
            try:
                self.credentials = read_credentials(self["credentials"])
            except ValueError as error:
                raise usage.UsageError(str(error)) from None
        try:
            self.stores = open_stores(self["store"])
        except StoreError as error:
            raise usage.UsageError(str(error)) from None

    def config(self) -> Config:
        """The broker's settings from these options."""
        return Config(
            max_clients=self["max-clients"],
            idle_timeout=self["idle-timeout"],
            max_message=self["max-message"],
            max_line=self["max-line"],
            max_upload=self["max-upload"],
        )


class BrokerService(Service):
    """Runs the broker with the application: on stop, every client gets ``* BYE shutdown``."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def stopService(self) -> Deferred:
        super().stopService()
        return self.broker.shutdown()


class StoresService(Service):
    """Closes the stores when the application stops, once the broker's clients are gone."""

    def __init__(self, stores: Stores, broker: Broker) -> None:
        self.stores = stores
        self.broker = broker

    def stopService(self) -> Deferred:
        super().stopService()
        return self.broker.shutdown().addBoth(lambda _: self.stores.close())


def makeService(options: Options, reactor=None) -> IServiceCollection:
    """The msgsvc application: one broker, served over TCP and UDP."""
    if reactor is None:
        from twisted.internet import reactor
    broker = Broker(options.stores, options.config(), reactor)
    if options.credentials:
        _import_credentials(broker, options)
    table = build_table()
    tcp = None if options["no-tcp"] else ConnectionFactory(broker, table, reactor)
    udp = None if options["no-udp"] else DatagramFrontEnd(broker, table, reactor)
    service = MultiService()
    StoresService(options.stores, broker).setServiceParent(service)
    ListenerService(reactor, options["interface"], options["port"], tcp, udp).setServiceParent(service)
    # Added last so it is stopped first: clients hear BYE before the ports close.
    BrokerService(broker).setServiceParent(service)
    return service


def _import_credentials(broker: Broker, options: Options) -> None:
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
