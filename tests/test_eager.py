"""The eager TCP transport on a socket pair, its reactor recorded: what goes out at a turn's end, what is buffered."""

import os
import socket
from collections.abc import Callable

from twisted.internet import main, tcp
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Protocol
from twisted.internet.ssl import PrivateCertificate
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from msgsvc.transports.eager import EagerServer
from tests.certs import self_signed

BIG = 1 << 20
"""More than a socket pair's buffers hold (about 200 KiB): a write this large is sent in part."""


class RecordingReactor(Clock):
    """What a FileDescriptor asks of its reactor: the descriptors registered for reading and writing."""

    def __init__(self) -> None:
        super().__init__()
        self.readers: set[object] = set()
        self.writers: set[object] = set()
        self.registrations = 0
        """How often a descriptor was registered for writing (an epoll_ctl each on a real reactor)."""

    def addReader(self, reader: object) -> None:
        self.readers.add(reader)

    def removeReader(self, reader: object) -> None:
        self.readers.discard(reader)

    def addWriter(self, writer: object) -> None:
        self.registrations += writer not in self.writers
        self.writers.add(writer)

    def removeWriter(self, writer: object) -> None:
        self.writers.discard(writer)


@implementer(IPushProducer)
class Producer:
    """A push producer recording whether it is paused."""

    def __init__(self) -> None:
        self.paused = False
        self.pauses = 0

    def pauseProducing(self) -> None:
        self.paused = True
        self.pauses += 1

    def resumeProducing(self) -> None:
        self.paused = False

    def stopProducing(self) -> None:
        pass


class Recorder(Protocol):
    """Records how the connection ended."""

    reason: Failure | None = None

    def connectionLost(self, reason: Failure = main.CONNECTION_DONE) -> None:
        self.reason = reason


class SocketPair(SynchronousTestCase):
    """A transport on one end of a connected socket pair, the test reading the other end."""

    transport_class: type[tcp.Server] = EagerServer

    def setUp(self) -> None:
        ours, self.peer = socket.socketpair()
        self.peer.setblocking(False)
        self.addCleanup(self.peer.close)
        self.reactor = RecordingReactor()
        self.protocol = Recorder()
        self.transport = self.transport_class(ours, self.protocol, ("127.0.0.1", 1), None, 0, self.reactor)
        self.protocol.makeConnection(self.transport)
        self.sends = 0
        send = self.transport.writeSomeData

        def counted(data: bytes) -> object:
            self.sends += 1
            return send(data)

        self.transport.writeSomeData = counted
        self.addCleanup(self._lose)

    def _lose(self) -> None:
        if self.transport.connected:
            self.transport.connectionLost(Failure(ConnectionDone()))

    def turn(self, *writes: bytes, then: Callable[[], object] = lambda: None) -> None:
        """A reactor turn: ``writes`` are written (replies, events), ``then`` runs, and the turn's events end."""
        for data in writes:
            self.transport.write(data)
        then()
        self.reactor.advance(0)

    def received(self) -> bytes:
        """What the peer can read now."""
        chunks = []
        while True:
            try:
                chunk = self.peer.recv(65536)
            except BlockingIOError:
                return b"".join(chunks)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def drain(self) -> tuple[bytes, object]:
        """Read on the peer's side and let the reactor call doWrite until the transport stops writing
        (or doWrite says the connection is lost); what was read, and doWrite's last result."""
        data, result = [], None
        while self.transport in self.reactor.writers and result is None:
            data.append(self.received())
            result = self.transport.doWrite()
        data.append(self.received())
        return b"".join(data), result


class EagerWriteTests(SocketPair):
    """A turn's writes go out in one send at its end when nothing is buffered; what the kernel leaves is Twisted's."""

    def test_written_at_once(self):
        """A reply is on the wire when the turn that asked for it ends: no write registration, no further turn."""
        self.turn(b"OK pong\r\n")
        self.assertEqual(self.received(), b"OK pong\r\n")
        self.assertEqual((self.reactor.registrations, self.sends), (0, 1))
        self.assertNotIn(self.transport, self.reactor.writers)

    def test_one_send_per_turn(self):
        """Many writes in one turn leave in one send, in order."""
        replies = [b"%d\r\n" % index for index in range(100)]
        self.turn(*replies)
        self.assertEqual(self.received(), b"".join(replies))
        self.assertEqual((self.reactor.registrations, self.sends), (0, 1))

    def test_before_the_turn_ends_nothing_is_sent(self):
        """Writes wait, unregistered, until the reactor has handled the turn's events (the other clients' commands,
        whose events join them)."""
        self.transport.write(b"OK said\r\n")
        self.transport.write(b"* CHAT b hello\r\n")
        self.assertEqual((self.received(), self.reactor.registrations), (b"", 0))
        self.reactor.advance(0)
        self.assertEqual(self.received(), b"OK said\r\n* CHAT b hello\r\n")
        self.assertEqual((self.reactor.registrations, self.sends), (0, 1))

    def test_empty_write(self):
        """An empty write sends nothing and registers nothing."""
        self.turn(b"")
        self.assertEqual((self.received(), self.reactor.registrations, self.sends), (b"", 0, 0))

    def test_not_bytes(self):
        """A write of text is refused with TypeError, with bytes gathered or not, as by Twisted's write."""
        self.assertRaises(TypeError, self.transport.write, "text")
        refused = []
        self.turn(b"OK\r\n", then=lambda: refused.append(self.assertRaises(TypeError, self.transport.write, "x")))
        self.assertEqual((len(refused), self.received()), (1, b"OK\r\n"))

    def test_write_sequence(self):
        """writeSequence joins the gathered writes in order; a part that is not bytes is refused."""
        self.turn(b"a", then=lambda: self.transport.writeSequence([b"b", b"c"]))
        self.assertEqual(self.received(), b"abc")
        self.turn(then=lambda: self.assertRaises(TypeError, self.transport.writeSequence, [b"d", "e"]))
        self.assertEqual(self.received(), b"")

    def test_connection_lost_before_the_turn_ends(self):
        """What was written before the connection was lost in the same turn is dropped, as Twisted drops its buffer."""
        self.turn(b"OK half\r\n", then=lambda: self.transport.connectionLost(Failure(ConnectionLost())))
        self.assertEqual((self.received(), self.sends), (b"", 0))

    def test_start_tls_sends_gathered_bytes_first(self):
        """startTLS on the transport sends what was gathered first, in the clear; later writes go through TLS."""
        key, cert = self_signed(self.mktemp_dir())
        with open(key, "rb") as key_file, open(cert, "rb") as cert_file:
            options = PrivateCertificate.loadPEM(key_file.read() + cert_file.read()).options()
        self.turn(b"OK go ahead\r\n", then=lambda: self.transport.startTLS(options))
        self.assertEqual(self.received(), b"OK go ahead\r\n")
        self.turn(b"secret")
        self.assertNotIn(b"secret", self.drain()[0])

    def mktemp_dir(self) -> str:
        path = self.mktemp()
        os.makedirs(path)
        return path

    def test_partial_send_buffers_the_rest(self):
        """A write larger than the socket takes is sent in part; Twisted buffers and sends the rest, in order."""
        data = os.urandom(BIG)
        self.turn(data)
        self.assertIn(self.transport, self.reactor.writers)
        received, result = self.drain()
        self.assertIsNone(result)
        self.assertEqual(received, data)
        self.assertNotIn(self.transport, self.reactor.writers)

    def test_writes_wait_behind_buffered_bytes(self):
        """While bytes are buffered, a later write is buffered behind them, never sent before them."""
        big, small = os.urandom(BIG), b"OK after\r\n"
        self.turn(big)
        first = self.received()
        self.turn(small)
        self.assertFalse(first.endswith(small))
        received, _ = self.drain()
        self.assertEqual(first + received, big + small)

    def test_mixed_eager_and_buffered_writes(self):
        """Writes sent at a turn's end and writes buffered, mixed, arrive complete and in order."""
        sent, received = [], []
        for round in range(6):
            reads = [b"%d.%d\r\n" % (round, index) for index in range(3)]
            reads.append(os.urandom(BIG + round))
            reads.append(b"after %d\r\n" % round)
            self.turn(*reads)
            sent.extend(reads)
            sent.append(b"event %d\r\n" % round)
            self.transport.write(sent[-1])
            if round % 2:  # drain every other round: some turns find the buffer empty, some do not
                received.append(self.drain()[0])
        received.append(self.drain()[0])
        self.assertEqual(b"".join(received), b"".join(sent))


class FlowControlTests(SocketPair):
    """A push producer is paused past bufferSize and resumed once Twisted's buffer drains, as by Twisted."""

    def test_producer_paused_and_resumed(self):
        """A large write to a peer that does not read pauses the producer; draining resumes it."""
        producer = Producer()
        self.transport.registerProducer(producer, True)
        data = os.urandom(BIG)
        self.turn(b"OK head\r\n", data)
        self.assertTrue(producer.paused)
        self.assertTrue(self.transport.producerPaused)
        received, _ = self.drain()
        self.assertFalse(producer.paused)
        self.assertEqual(received, b"OK head\r\n" + data)
        self.turn(b"OK next\r\n")
        self.assertEqual(self.received(), b"OK next\r\n")

    def test_paused_during_the_read(self):
        """Gathered bytes past bufferSize are sent at once, so the producer is paused before the turn ends."""
        producer = Producer()
        self.transport.registerProducer(producer, True)
        seen = []
        self.turn(os.urandom(BIG), then=lambda: seen.append(producer.paused))
        self.assertEqual(seen, [True])

    def test_small_writes_do_not_pause(self):
        """Writes the kernel takes whole never pause the producer."""
        producer = Producer()
        self.transport.registerProducer(producer, True)
        for _ in range(50):
            self.turn(b"x" * 40)
            self.received()
        self.assertEqual(producer.pauses, 0)

    def test_pull_producer_takes_the_stock_path(self):
        """With a pull producer, writes are buffered, so doWrite asks it for more as Twisted does."""
        asked = []

        class Pull:
            def resumeProducing(self) -> None:
                asked.append(True)

            def stopProducing(self) -> None:
                pass

        self.transport.registerProducer(Pull(), False)
        self.turn(b"chunk")
        self.assertEqual(self.received(), b"")
        received, _ = self.drain()
        self.assertEqual((received, len(asked)), (b"chunk", 2))
