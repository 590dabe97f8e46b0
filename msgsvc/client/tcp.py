# -*- test-case-name: tests.test_client -*-
"""A msgsvc client over TCP: one Deferred per command, events to a callback."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from twisted.internet import protocol
from twisted.internet.defer import Deferred, fail
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.error import ConnectionLost, TimeoutError
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IReactorTime,
    IStreamClientEndpoint,
    ITCPTransport,
)
from twisted.python.failure import Failure

from msgsvc.client.replies import Event, ProtocolViolation, Reply, ReplyParser, ServerError
from msgsvc.client.requests import encode_command
from msgsvc.client.tls import tls_failure

EventHandler = Callable[[Event], None]


@runtime_checkable
class StreamTransport(Protocol):
    """What the client uses of its transport: a TCP one has it, and so has a test's StringTransport."""

    def write(self, data: bytes) -> None: ...

    def abortConnection(self) -> None: ...


class TcpClient(protocol.Protocol):
    """Sends commands and matches replies to them in order; ``greeting`` fires on the server's hello."""

    def __init__(
        self, on_event: EventHandler | None = None, reactor: IReactorTime | None = None, timeout: float | None = None
    ) -> None:
        """``reactor`` runs the ``timeout`` of commands (so it is needed with one)."""
        self.on_event = on_event or (lambda event: None)
        self.reactor = reactor
        self.timeout = timeout
        """Seconds a command may wait for its reply (None: forever); then the connection is dropped."""
        self.greeting: Deferred[Reply] = Deferred()
        self.disconnected: Deferred[None] = Deferred()
        self._parser = ReplyParser()
        self._waiting: deque[Deferred[Reply]] = deque([self.greeting])

    def connectionMade(self) -> None:
        transport: object = self.transport
        assert isinstance(transport, StreamTransport)  # see StreamTransport
        self._stream = transport
        if ITCPTransport.providedBy(transport):  # a command is small and awaited: never held back (Nagle)
            transport.setTcpNoDelay(True)

    def command(self, verb: str, *args: str, payload: bytes | None = None) -> Deferred[Reply]:
        """Send a command; fires with its Reply, or fails with ServerError on ``ERR`` or TimeoutError."""
        if self.disconnected.called:
            return fail(ConnectionLost("the connection is closed"))
        waiting: Deferred[Reply] = Deferred()
        self._waiting.append(waiting)
        self._stream.write(encode_command(verb, *args, payload=payload))
        if self.timeout is not None:
            assert self.reactor is not None, "a command timeout needs a reactor"
            waiting.addTimeout(self.timeout, self.reactor, onTimeoutCancel=self._timed_out)
        return waiting

    def abort(self) -> None:
        """Drop the connection at once (nothing more can be matched, or a farewell took too long)."""
        self._stream.abortConnection()

    def _timed_out(self, result: object, timeout: float) -> Failure:
        """A reply is overdue: later replies could no longer be matched, so the connection goes."""
        self.abort()
        return Failure(TimeoutError(f"no reply within {timeout:g} seconds"))

    def dataReceived(self, data: bytes) -> None:
        try:
            items = self._parser.feed(data)
        except ProtocolViolation:
            self.abort()
            return
        for item in items:
            if isinstance(item, Event):
                self.on_event(item)
            elif self._waiting:
                waiting = self._waiting.popleft()
                if waiting.called:  # timed out already
                    continue
                if item.kind == "ERR":
                    waiting.errback(ServerError(item))
                else:
                    waiting.callback(item)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        why = tls_failure(reason) or ConnectionLost("the server closed the connection")
        waiting, self._waiting = self._waiting, deque()
        for pending in waiting:
            if not pending.called:
                pending.errback(why)
        self.disconnected.callback(None)


def connect_tcp(
    reactor: IReactorTime,
    host: str,
    port: int,
    on_event: EventHandler | None = None,
    timeout: float = 10,
    command_timeout: float | None = None,
    tls: IOpenSSLClientConnectionCreator | None = None,
) -> Deferred[TcpClient]:
    """Connect and wait for the greeting; fails with ServerError when the server is full.

    ``timeout`` bounds connecting and then the greeting (TimeoutError, the connection
    dropped); ``command_timeout`` (None: no limit) bounds each reply. With ``tls``
    (see :func:`msgsvc.client.tls.client_tls`) the connection is TLS; a server whose
    certificate fails verification fails it with TlsFailure.
    """

    client = TcpClient(on_event, reactor, command_timeout)

    def silent(result: object, seconds: float) -> Failure:
        client.abort()
        return Failure(TimeoutError(f"no greeting from {host}:{port} within {seconds:g} seconds"))

    async def connect() -> TcpClient:
        endpoint: IStreamClientEndpoint = HostnameEndpoint(reactor, host, port, timeout=timeout)
        if tls is not None:
            endpoint = wrapClientTLS(tls, endpoint)
        await connectProtocol(endpoint, client)
        await client.greeting.addTimeout(timeout, reactor, onTimeoutCancel=silent)
        return client

    return Deferred.fromCoroutine(connect())
