"""WebSocket test fixtures: a recording client protocol, and the web site served on an in-memory reactor."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.test.iosim import ConnectionCompleter, IOPump
from twisted.web.websocket import WebSocketClientEndpoint, WebSocketTransport

from msgsvc.client.replies import Event, Reply, ReplyParser
from msgsvc.dispatch.verbs import build_table
from msgsvc.domain.broker import Broker
from msgsvc.web.site import build_site
from tests.helpers import make_broker, settle


class RecordingClient:
    """A WebSocket client protocol that keeps every message it receives; ``next()`` waits for one."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.texts: list[str] = []
        self.lost: Failure | None = None
        self.gone: Deferred[None] = Deferred()
        """Fires when the connection is lost."""
        self._waiters: list[Deferred[bytes]] = []
        self.transport: WebSocketTransport | None = None

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        """Nothing to do: the server greets first."""

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        if self._waiters:
            self._waiters.pop(0).callback(bytes(data))
        else:
            self.messages.append(bytes(data))

    def textMessageReceived(self, message: str) -> None:
        self.texts.append(message)

    def pongReceived(self, payload: bytes) -> None:
        """Unused."""

    def connectionLost(self, reason: Failure) -> None:
        self.lost = reason
        self.gone.callback(None)

    def send(self, message: bytes) -> None:
        """One message to the server."""
        assert self.transport is not None
        self.transport.sendBytesMessage(message)

    def next(self) -> Deferred[bytes]:
        """The next message from the server (one already received, or the next to arrive)."""
        if self.messages:
            d: Deferred[bytes] = Deferred()
            d.callback(self.messages.pop(0))
            return d
        waiter: Deferred[bytes] = Deferred()
        self._waiters.append(waiter)
        return waiter

    def take(self) -> list[bytes]:
        """The messages received since the last call."""
        taken, self.messages = self.messages, []
        return taken


class ClientFactory:
    """Builds one RecordingClient per connection."""

    def buildProtocol(self, url: str) -> RecordingClient:
        return RecordingClient()


class WebHarness:
    """The web site of a broker on a MemoryReactorClock (also the broker's clock); clients over iosim pumps."""

    def __init__(self, broker: Broker | None = None, table=None, **settings) -> None:
        self.reactor = MemoryReactorClock()
        self.broker = broker or make_broker(self.reactor, **settings)
        self.table = table or build_table()
        self.site = build_site(self.broker, self.table, self.reactor, None, None)
        self.reactor.listenTCP(80, self.site)
        self.pumps: list[IOPump] = []

    def connect(self) -> RecordingClient:
        """A WebSocket client connected to /ws, its handshake done."""
        endpoint = WebSocketClientEndpoint.new(self.reactor, "http://localhost:80/ws")
        connected = Deferred.fromCoroutine(endpoint.connect(ClientFactory()))
        pump = ConnectionCompleter(self.reactor).succeedOnce()
        assert pump is not None
        self.pumps.append(pump)
        results: list[RecordingClient] = []
        connected.addCallback(results.append)
        pump.flush()
        (client,) = results
        return client

    def flush(self) -> None:
        """Carry every byte in flight, both ways, on every connection (after pending commits)."""
        for _ in range(3):
            settle(self.broker)
            for pump in self.pumps:
                pump.flush()

    def exchange(self, client: RecordingClient, message: bytes) -> list[bytes]:
        """Send one message; the messages received since the last call, once everything is carried."""
        client.send(message)
        self.flush()
        return client.take()


def parsed(messages: list[bytes]) -> list[Reply | Event]:
    """Each message parsed on its own: it must hold exactly one reply or event."""
    items = []
    for message in messages:
        (item,) = ReplyParser().feed(message)
        items.append(item)
    return items
