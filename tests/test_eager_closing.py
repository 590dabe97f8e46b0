"""The eager TCP transport closing (on a socket pair), beside Twisted's own, and where the listeners use it."""

import os

from twisted.internet import main, reactor, tcp
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from msgsvc.transports.eager import EagerPort, EagerServer, EagerTCPEndpoint
from msgsvc.transports.endpoints import parse_listen, tcp_endpoint
from msgsvc.transports.listeners import ListenerService
from tests.test_eager import BIG, SocketPair
from tests.test_tls import TlsServerCase


class ClosingTests(SocketPair):
    """Closing after eager writes delivers everything; a lost, half-closed or aborted one sends no more."""

    def test_lose_connection_after_eager_writes(self):
        """loseConnection after writes gathered and buffered delivers every byte, then closes."""
        data = [b"OK one\r\n", os.urandom(BIG), b"OK two\r\n"]
        self.turn(*data, then=self.transport.loseConnection)
        self.transport.write(b"OK three\r\n")  # buffered behind the rest, as Twisted does while closing
        received, result = self.drain()
        self.assertEqual(received, b"".join(data) + b"OK three\r\n")
        self.assertIsInstance(result, ConnectionDone)

    def test_lose_connection_before_the_turn_ends(self):
        """Gathered bytes go out before loseConnection registers for writing, so a doWrite before the turn's end
        (a reactor poll after a timed call's write) cannot close the connection without them."""
        self.transport.write(b"* BYE shutdown\r\n")
        self.transport.loseConnection()
        self.assertIsInstance(self.transport.doWrite(), ConnectionDone)
        self.assertEqual(self.received(), b"* BYE shutdown\r\n")

    def test_lose_connection_during_the_turn(self):
        """Writes before and after loseConnection in one turn are all delivered, in order, before the close."""

        def close_then_write() -> None:
            self.transport.loseConnection()
            self.transport.write(b"OK after\r\n")

        self.turn(b"OK bye\r\n", then=close_then_write)
        received, result = self.drain()
        self.assertEqual(received, b"OK bye\r\nOK after\r\n")
        self.assertIsInstance(result, ConnectionDone)

    def test_peer_gone(self):
        """A send that fails is handed to Twisted, whose doWrite reports the connection lost, without a traceback."""
        self.turn(b"OK lost\r\n", then=self.peer.close)
        self.assertIn(self.transport, self.reactor.writers)
        result = self.transport.doWrite()
        self.assertIsInstance(result, ConnectionLost)
        self.transport.connectionLost(Failure(result))
        self.assertTrue(self.protocol.reason.check(ConnectionLost))
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_write_after_connection_lost(self):
        """A write after the connection is lost is dropped, as by Twisted."""
        self.transport.connectionLost(Failure(ConnectionDone()))
        self.transport.write(b"OK late\r\n")
        self.assertEqual(self.reactor.writers, set())

    def test_abort_sends_nothing_more(self):
        """abortConnection drops what the turn wrote, before and after it."""

        def abort_then_write() -> None:
            self.transport.abortConnection()
            self.transport.write(b"OK dropped too\r\n")

        self.turn(b"OK dropped\r\n", then=abort_then_write)
        self.assertEqual((self.received(), self.sends), (b"", 0))
        self.reactor.advance(0)
        self.assertTrue(self.protocol.reason.check(ConnectionAborted))

    def test_half_close(self):
        """After loseWriteConnection what was written goes out, then the write side closes; later writes are dropped."""
        self.turn(b"OK before\r\n", then=self.transport.loseWriteConnection)
        self.transport.write(b"OK buffered\r\n")
        received, result = self.drain()
        self.assertIsNone(result)
        self.turn(b"OK after\r\n")
        self.assertEqual(received, b"OK before\r\nOK buffered\r\n")
        self.assertEqual(self.received(), b"")


class StockTransportTests(SocketPair):
    """Twisted's own transport on the same socket pair: what the eager one saves."""

    transport_class = tcp.Server

    def test_stock_write_waits_for_the_reactor(self):
        """Twisted's write sends nothing itself: it registers for writing, and doWrite sends on a later turn."""
        self.turn(b"OK pong\r\n")
        self.assertEqual(self.received(), b"")
        self.assertEqual(self.reactor.registrations, 1)
        self.assertEqual(self.drain()[0], b"OK pong\r\n")


class WiringTests(TestCase):
    """The listeners use the eager endpoint where the reactor allows, Twisted's ``tcp:`` endpoint elsewhere."""

    def test_posix_reactor_listens_eagerly(self):
        """On the running (epoll, poll or select) reactor, TCP listeners are EagerPorts."""
        self.assertIsInstance(tcp_endpoint(reactor, 0, "127.0.0.1"), EagerTCPEndpoint)
        service = ListenerService(reactor, "127.0.0.1", 0, Factory.forProtocol(Protocol), None)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertIsInstance(service.listening[0], EagerPort)

    def test_memory_reactor_falls_back(self):
        """On a reactor not built on PosixReactorBase (a MemoryReactor), the stock tcp: endpoint is used."""
        memory = MemoryReactor()
        endpoint = tcp_endpoint(memory, 5555, "127.0.0.1", 7)
        self.assertIsInstance(endpoint, TCP4ServerEndpoint)
        endpoint.listen(Factory.forProtocol(Protocol))
        ((port, _, backlog, interface),) = memory.tcpServers
        self.assertEqual((port, backlog, interface), (5555, 7, "127.0.0.1"))

    def test_listen_spec_tcp_is_eager(self):
        """A --listen tcp: endpoint listens eagerly."""
        self.assertIsInstance(parse_listen("tcp:0:interface=127.0.0.1").endpoint(reactor, None), EagerTCPEndpoint)

    async def test_connection_is_eager(self):
        """A connection accepted by the eager endpoint is an EagerServer, and its reply needs no write registration."""
        seen, server_lost, client_lost, answered = [], Deferred(), Deferred(), Deferred()

        class Reply(Protocol):
            def dataReceived(self, data: bytes) -> None:
                self.transport.write(b"OK " + data)
                seen.append((self.transport, self.transport in reactor.getWriters()))

            def connectionLost(self, reason: Failure = main.CONNECTION_DONE) -> None:
                server_lost.callback(None)

        class Ask(Protocol):
            def connectionMade(self) -> None:
                self.transport.write(b"ping\r\n")

            def dataReceived(self, data: bytes) -> None:
                answered.callback(data)

            def connectionLost(self, reason: Failure = main.CONNECTION_DONE) -> None:
                client_lost.callback(None)

        port = await tcp_endpoint(reactor, 0, "127.0.0.1").listen(Factory.forProtocol(Reply))
        self.addCleanup(port.stopListening)
        client = await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), Ask())
        self.assertEqual(await answered, b"OK ping\r\n")
        client.transport.loseConnection()
        await gatherResults([server_lost, client_lost])
        ((transport, registered),) = seen
        self.assertIsInstance(transport, EagerServer)
        self.assertFalse(registered)


class TlsTests(TlsServerCase):
    """An ``ssl:`` listener is eager too: TLS writes its records to an EagerServer."""

    async def test_tls_over_eager(self) -> None:
        """The TLS listener's port is an EagerPort, the transport under TLS an EagerServer, and it serves."""
        self.assertIsInstance(self.listener.extra[0], EagerPort)
        client = await self.connect()
        self.assertEqual((await client.command("PING")).text, "PONG")
        (session,) = self.broker.sessions
        self.assertIsInstance(session.client.transport.transport, EagerServer)
