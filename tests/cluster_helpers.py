"""Fixtures for the cluster tests: several brokers (nodes) in this process on one real redis-server."""

from __future__ import annotations

import os
import sys
from collections import deque
from dataclasses import dataclass, field

from twisted.internet import reactor, task
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from msgsvc.client import connect_tcp
from msgsvc.client.tcp import TcpClient
from msgsvc.config import Config
from msgsvc.domain import events
from msgsvc.domain.broker import Broker
from msgsvc.domain.interfaces import IClient
from msgsvc.domain.session import Session
from msgsvc.protocol.events import encode_event
from msgsvc.store import open_stores
from msgsvc.store.redis_cluster import RedisNodeLink
from msgsvc.store.redis_connection import Address
from tests.helpers import CHECKOUT_ENV, run_now, temp_dir
from tests.redis_server import RedisServer, start_redis
from tests.test_twistd import _Twistd

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


@implementer(IClient)
@dataclass(eq=False)
class Listener:
    """An IClient whose events can be awaited one by one."""

    transport_name: str = "tcp"
    peer: tuple[str, int] = ("127.0.0.1", 40000)
    heard: deque[bytes] = field(default_factory=deque)
    closed_with: str | None = None
    session: Session | None = None
    broker: Broker | None = None
    _waiting: list[Deferred[bytes]] = field(default_factory=list)

    def send_event(self, event: events.Event) -> None:
        line = encode_event(event).rstrip(b"\r\n")
        if self._waiting:
            self._waiting.pop(0).callback(line)
        else:
            self.heard.append(line)

    def close(self, reason: str) -> None:
        self.closed_with = reason
        if self.broker is not None and self.session is not None:
            self.broker.close_session(self.session)  # as a front end does once the client is gone

    def event(self) -> Deferred[bytes]:
        """The next event's line (without its line ending)."""
        waiting: Deferred[bytes] = Deferred()
        if self.heard:
            waiting.callback(self.heard.popleft())
        else:
            self._waiting.append(waiting)
        return waiting.addTimeout(5, reactor)


async def until(listener: Listener, line: bytes) -> list[bytes]:
    """Wait for ``line``; answers the events before it (another node's event may arrive after a later local one)."""
    before = []
    while (event := await listener.event()) != line:
        before.append(event)
    return before


def link_of(broker: Broker) -> RedisNodeLink:
    """The broker's node link (its store is Redis)."""
    link = broker.stores.cluster
    assert isinstance(link, RedisNodeLink)
    return link


async def start_node(testcase: TestCase, server: RedisServer | Address, **settings: object) -> Broker:
    """A broker on the server's Redis, joined (listening, first heartbeat done); shut down after the test."""
    url = server.url() if isinstance(server, RedisServer) else f"redis://{server}"
    stores = open_stores(url, reactor)
    broker = Broker(stores, Config(**settings), reactor, run_now)  # type: ignore[arg-type]
    testcase.addCleanup(stores.close)
    testcase.addCleanup(broker.shutdown)
    link = link_of(broker)
    assert link.subscription is not None
    await link.subscription.up
    await link.heartbeat()
    return broker


async def start_nodes(testcase: TestCase, count: int, **settings: object) -> list[Broker]:
    """``count`` nodes on a fresh redis-server (the test is skipped without redis-server)."""
    server = await start_redis(testcase)
    nodes = [await start_node(testcase, server, **settings) for _ in range(count)]
    for node in nodes:
        await link_of(node).heartbeat()  # each counts the others' clients
    return nodes


def client(broker: Broker, port: int = 40000) -> tuple[Session, Listener]:
    """A connected client of ``broker``."""
    listener = Listener(peer=("127.0.0.1", port))
    session = broker.open_session(listener)
    assert session is not None
    listener.session, listener.broker = session, broker
    return session, listener


class TwistdNode:
    """One ``twistd -n msgsvc`` process on a Redis store; ``port`` once :meth:`start` has fired."""

    def __init__(self, testcase: TestCase, server: RedisServer, *options: str) -> None:
        self.process = _Twistd()
        args = [TWISTD, "-n", "--pidfile=", "msgsvc", "--port", "0", "--store", server.url(), *options]
        if "--max-clients" not in options:
            args += ["--max-clients", "0"]
        self.transport = reactor.spawnProcess(self.process, TWISTD, args, env=CHECKOUT_ENV, path=temp_dir(testcase))
        testcase.addCleanup(self.stop)
        self.port = 0

    async def start(self) -> TwistdNode:
        self.port = await self.process.started
        return self

    def stop(self, signal: str = "TERM") -> Deferred[tuple]:
        """Signal the process (TERM: a clean shutdown, KILL: kill -9); fires once it has ended."""
        if not self.process.ended.called:
            self.transport.signalProcess(signal)
        return self.process.ended


async def connect(testcase: TestCase, port: int, events: list | None = None) -> TcpClient:
    """A TCP client of the node on ``port``, aborted after the test; its events go to ``events``."""
    client = await connect_tcp(reactor, "127.0.0.1", port, (events if events is not None else []).append)
    testcase.addCleanup(lambda: client.disconnected.called or client.abort())
    return client


async def poll(check, seconds: float = 5, step: float = 0.05) -> object:
    """Call ``check`` (maybe async) until it answers something true, for at most ``seconds``; answer that."""
    for _ in range(int(seconds / step)):
        result = check()
        if isinstance(result, Deferred) or hasattr(result, "__await__"):
            result = await result
        if result:
            return result
        await task.deferLater(reactor, step, lambda: None)
    raise AssertionError(f"not true within {seconds} seconds: {check}")
