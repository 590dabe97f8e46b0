"""A StringTransport that pauses, resumes and closes like a real TCP transport, and a harness over it."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionAborted, ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from msgsvc.client.replies import Event, Reply, ReplyParser
from msgsvc.transports.tcp import ConnectionFactory
from tests.helpers import settle

BUFFER_SIZE = 65536
"""What ``FileDescriptor.bufferSize`` is: past it, a transport pauses its streaming producer."""


class SocketLikeTransport(StringTransport):
    """A transport whose buffer (``value()``) is what the client has not read yet.

    Like ``twisted.internet.abstract.FileDescriptor``: a write that takes the
    buffer past BUFFER_SIZE pauses the registered streaming producer; once
    the buffer has drained, a paused producer is resumed, and only when no
    producer is paused does a ``loseConnection`` complete. ``abortConnection``
    loses the connection on the next turn of the clock, as the reactor does.
    Pausing or resuming it (reading) after loseConnection is allowed, as on a
    real transport.
    """

    def __init__(self, clock: Clock, port: int) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", "127.0.0.1", port), lenient=True)
        self.clock = clock
        self.producer_paused = False
        self.lost = False
        self.protocol = None

    def write(self, data: bytes) -> None:
        if self.lost or self.disconnected:
            return
        super().write(data)
        if self.producer is not None and self.streaming and len(self.value()) > BUFFER_SIZE:
            self.producer_paused = True
            self.producer.pauseProducing()

    def drain(self) -> bytes:
        """The client reads until the server writes no more, the transport reacting as doWrite does."""
        received = [self.step()]
        while self.value():
            received.append(self.step())
        return b"".join(received)

    def step(self) -> bytes:
        """The client reads what is buffered, then the transport reacts once, as doWrite does; returns what was read."""
        received = self.value()
        self.clear()
        if self.lost or self.disconnected:
            return received
        if self.producer is not None and self.producer_paused:
            self.producer_paused = False
            self.producer.resumeProducing()  # in the reported bug, the close waits for this forever
        elif self.disconnecting:
            self._lose(ConnectionDone())
        return received

    def abortConnection(self) -> None:
        if not self.disconnected:
            super().abortConnection()
            self.clock.callLater(0, self._lose, ConnectionAborted())

    def _lose(self, reason: Exception) -> None:
        if not self.lost:
            self.lost = True
            self.protocol.connectionLost(Failure(reason))


class SocketHarness:
    """One connection built by a ConnectionFactory, over a SocketLikeTransport."""

    def __init__(self, factory: ConnectionFactory, port: int) -> None:
        self.broker = factory.broker
        self.transport = SocketLikeTransport(factory.broker.clock, port)
        self.protocol = factory.buildProtocol(self.transport.getPeer())
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)
        self._parser = ReplyParser()

    def send(self, data: bytes) -> None:
        """Bytes from the client."""
        self.protocol.dataReceived(data)

    def read(self) -> bytes:
        """Let due commits happen, then read everything the server has written."""
        settle(self.broker)
        return self.transport.drain()

    def received(self) -> list[Reply | Event]:
        """Read, and parse what was read into replies and events."""
        return self._parser.feed(self.read())

    def replies(self) -> list[Reply]:
        """Read; only the replies."""
        return [item for item in self.received() if isinstance(item, Reply)]

    @property
    def released(self) -> bool:
        """The connection is gone on the server's side too."""
        return self.transport.lost
