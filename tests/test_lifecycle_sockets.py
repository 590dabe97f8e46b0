"""How TCP connections end over real loopback sockets: the server releases its end."""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from msgsvc.dispatch.verbs import build_table
from msgsvc.domain.broker import Broker
from msgsvc.transports.tcp import Connection, ConnectionFactory
from tests.helpers import make_broker
from tests.lifecycle_helpers import BIG, IDLE


class _Watched(Connection):
    """A server connection that reports what the transport does to it."""

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        self.factory.received += len(data)
        if self.factory.received >= self.factory.expected and not self.factory.all_received.called:
            self.factory.all_received.callback(None)

    def pauseProducing(self) -> None:
        super().pauseProducing()
        if not self.factory.paused.called:
            self.factory.paused.callback(None)

    def connectionLost(self, reason: Failure) -> None:
        super().connectionLost(reason)
        self.factory.lost.callback(None)


class _WatchedFactory(ConnectionFactory):
    """Builds _Watched connections; the Deferreds fire on the first such event."""

    def __init__(self, broker: Broker, expected: int) -> None:
        super().__init__(broker, build_table(), broker.clock)
        self.expected = expected
        self.received = 0
        self.all_received: Deferred[None] = Deferred()
        self.paused: Deferred[None] = Deferred()
        self.lost: Deferred[None] = Deferred()

    def buildProtocol(self, addr: object) -> _Watched:
        connection = _Watched(self.broker, self.table, self.clock)
        connection.factory = self
        return connection


class _Client(Protocol):
    """Sends ``request`` on connect; reads what comes only if ``reads``."""

    def __init__(self, request: bytes, reads: bool) -> None:
        self.request = request
        self.reads = reads
        self.data = b""
        self.gone: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        if not self.reads:
            self.transport.pauseProducing()  # never read: the socket buffers fill up
        self.transport.write(self.request)

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure) -> None:
        self.gone.callback(None)


class RealSocketTests(TestCase):
    """Over real loopback sockets (port 0), the broker's timers on a Clock: the server releases its end."""

    timeout = 20

    PIPELINE = b"RECV 0.3\nECHO {%d}\n" % BIG + b"x" * BIG + b"\nQUIT\n"

    def serve(self, expected: int) -> _WatchedFactory:
        broker = make_broker(Clock(), idle_timeout=IDLE)
        factory = _WatchedFactory(broker, expected)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port
        return factory

    async def connect(self, request: bytes, reads: bool) -> _Client:
        client = _Client(request, reads)
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.port), client)
        self.addCleanup(lambda: client.gone)
        self.addCleanup(client.transport.abortConnection)
        return client

    async def test_quit_after_large_reply_releases(self) -> None:
        """The reported case: a reading client's connection ends after QUIT, its reply over 64 KiB."""
        factory = self.serve(len(self.PIPELINE))
        client = await self.connect(self.PIPELINE, reads=True)
        await factory.all_received
        factory.broker.clock.advance(0.3)
        await factory.lost
        await client.gone
        self.assertTrue(client.data.endswith(b"\r\nOK bye\r\n"))
        self.assertEqual(factory.broker.sessions, [])

    async def test_quit_unread_reply_released(self) -> None:
        """A client that quits and never reads is released at the latest --idle-timeout later."""
        factory = self.serve(len(self.PIPELINE))
        await self.connect(self.PIPELINE, reads=False)
        await factory.all_received
        factory.broker.clock.advance(0.3)
        factory.broker.clock.advance(IDLE)
        await factory.lost
        self.assertEqual(factory.broker.sessions, [])

    async def test_unread_stream_released(self) -> None:
        """A client that never reads its GEN is cut off after --idle-timeout and its slot freed."""
        factory = self.serve(len(b"GEN 100000000\n"))
        await self.connect(b"GEN 100000000\n", reads=False)
        await factory.paused
        factory.broker.clock.advance(IDLE)
        await factory.lost
        self.assertEqual(factory.broker.sessions, [])
