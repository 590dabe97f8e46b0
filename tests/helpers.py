"""Shared test fixtures: a broker on a Clock, and both front ends on in-memory transports."""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.internet.utils import getProcessOutputAndValue
from twisted.python.failure import Failure
from zope.interface import implementer

from msgsvc.client.replies import Event, Reply, ReplyParser
from msgsvc.config import Config
from msgsvc.dispatch.verbs import build_table
from msgsvc.domain import events
from msgsvc.domain.broker import Broker
from msgsvc.domain.interfaces import IClient
from msgsvc.protocol.events import encode_event
from msgsvc.store import open_stores
from msgsvc.transports.listeners import ListenerService
from msgsvc.transports.tcp import Connection, ConnectionFactory
from msgsvc.transports.udp import DatagramFrontEnd
from tests.redis_sync import REDIS_AT_ONCE, redis_at_once

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The checkout: subprocesses run here with it importable."""
CHECKOUT_ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))


def settle(broker: Broker) -> None:
    """Let a Clock-driven broker run what is due now (a durable store's grouped commit)."""
    if isinstance(broker.clock, Clock):
        broker.clock.advance(0)


def run_now(function, *args, **kwargs) -> Deferred:
    """A stand-in for deferToThread that runs the function at once (tests run on a Clock)."""
    return maybeDeferred(function, *args, **kwargs)


def make_broker(clock: Clock | None = None, store: str = "memory", **settings) -> Broker:
    """A broker over a fresh store, on a Clock, doing its 'threaded' work at once."""
    clock = clock or Clock()
    stores = redis_at_once() if store == REDIS_AT_ONCE else open_stores(store, clock)
    return Broker(stores, Config(**settings), clock, run_now)


@implementer(IClient)
@dataclass(eq=False)
class FakeClient:
    """An IClient that records what the broker pushes to it."""

    transport_name: str = "tcp"
    peer: tuple[str, int] = ("127.0.0.1", 40000)
    events: list[bytes] = field(default_factory=list)
    closed_with: str | None = None

    def send_event(self, event: events.Event) -> None:
        self.events.append(encode_event(event))

    def close(self, reason: str) -> None:
        self.closed_with = reason


class TcpHarness:
    """One TCP connection to a broker, over a StringTransport."""

    def __init__(self, broker: Broker, port: int = 40000, table=None, factory: ConnectionFactory | None = None) -> None:
        """``factory``: the connection is its (sharing its budget and byte counts), else a lone one."""
        self.broker = broker
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
        if factory is not None:
            self.protocol = factory.buildProtocol(None)
        else:
            self.protocol = Connection(broker, table or build_table(), broker.clock)
        self.protocol.makeConnection(self.transport)
        self._parser = ReplyParser()

    def send(self, data: bytes) -> None:
        """Bytes from the client."""
        self.protocol.dataReceived(data)

    def output(self) -> bytes:
        """Everything the server wrote since the last call (once pending commits are done)."""
        settle(self.broker)
        data = self.transport.value()
        self.transport.clear()
        return data

    def received(self) -> list[Reply | Event]:
        """The replies and events the server wrote since the last call."""
        return self._parser.feed(self.output())

    def replies(self) -> list[Reply]:
        """Only the replies since the last call (events dropped)."""
        return [item for item in self.received() if isinstance(item, Reply)]

    def command(self, line: bytes) -> Reply:
        """Send one command line; return its single reply."""
        self.send(line + b"\n")
        (reply,) = self.replies()
        return reply

    def disconnect(self) -> None:
        """The client goes away."""
        self.protocol.connectionLost(Failure(ConnectionDone()))


class DatagramTransport:
    """Records datagrams the front end sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple]] = []

    def write(self, data: bytes, address: tuple) -> None:
        self.sent.append((data, address))


class UdpHarness:
    """The UDP front end of a broker, on a recording transport."""

    def __init__(self, broker: Broker, table=None, prefix: bytes = b"") -> None:
        """``prefix`` starts every datagram sent (e.g. a session key, ``&<key> ``)."""
        self.broker = broker
        self.prefix = prefix
        self.transport = DatagramTransport()
        self.protocol = DatagramFrontEnd(broker, table or build_table(), broker.clock)
        self.protocol.makeConnection(self.transport)

    def send(self, datagram: bytes, address: tuple = ("127.0.0.1", 50000)) -> None:
        """A datagram from ``address``."""
        self.protocol.datagramReceived(self.prefix + datagram, address)

    def datagrams(self, address: tuple = ("127.0.0.1", 50000)) -> list[bytes]:
        """Datagrams sent to ``address`` since the last call (once pending commits are done)."""
        settle(self.broker)
        mine = [data for data, to in self.transport.sent if to == address]
        self.transport.sent = [(data, to) for data, to in self.transport.sent if to != address]
        return mine

    def received(self, address: tuple = ("127.0.0.1", 50000)) -> list[Reply | Event]:
        """Parsed datagrams sent to ``address`` since the last call."""
        return [item for data in self.datagrams(address) for item in ReplyParser().feed(data)]

    def command(self, datagram: bytes, address: tuple = ("127.0.0.1", 50000)) -> Reply:
        """Send one datagram; return the single reply datagram."""
        self.send(datagram, address)
        (reply,) = [item for item in self.received(address) if isinstance(item, Reply)]
        return reply


def serve_for_test(testcase, broker: Broker, table=None) -> int:
    """Serve ``broker`` over real TCP and UDP on a free port until the test ends; returns the port.

    The broker should run on the real reactor (``make_broker(reactor)``). At
    cleanup the broker is shut down (clients get ``* BYE shutdown``) before the
    ports close, so no connection outlives the test.
    """
    table = table or build_table()
    tcp = ConnectionFactory(broker, table, reactor)
    listener = ListenerService(reactor, "127.0.0.1", 0, tcp, DatagramFrontEnd(broker, table, reactor))
    listener.startService()
    testcase.addCleanup(listener.stopService)
    testcase.addCleanup(broker.shutdown)
    return listener.bound_port


def run_cli(module: str, *args: str):
    """Run ``python -m <module> args`` with this checkout importable.

    Returns a Deferred firing with (stdout bytes, stderr bytes, exit code).
    """
    return getProcessOutputAndValue(sys.executable, ["-m", module, *args], env=CHECKOUT_ENV, path=ROOT, reactor=reactor)


def temp_path(testcase, name: str = "scratch") -> str:
    """A path (not yet created) in a fresh directory removed after the test."""
    return os.path.join(temp_dir(testcase), name)


def temp_dir(testcase) -> str:
    """A fresh directory removed after the test (trial's mktemp writes into the cwd, the checkout under pytest)."""
    directory = tempfile.TemporaryDirectory()
    testcase.addCleanup(directory.cleanup)
    return directory.name


class OnSqlite:
    """Mixed into a test case whose ``setUp`` opens the store ``store_url()`` names: the SQLite store."""

    def store_url(self) -> str:
        return "sqlite:" + temp_path(self, "msgsvc.sqlite")


class OnRedis:
    """Mixed into a test case whose ``setUp`` opens the store ``store_url()`` names: the Redis store
    (a real redis-server, answering at once: tests.redis_sync)."""

    def store_url(self) -> str:
        return REDIS_AT_ONCE
