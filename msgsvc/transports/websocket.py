# -*- test-case-name: tests.test_websocket -*-
"""The WebSocket front end (``/ws`` of ``--web``): one command per message, one reply or event per message.

A message from the client is framed like a datagram (:mod:`msgsvc.protocol.framing`):
one command line, then the literal it announces, if any. Each reply, event
and the greeting goes back as one binary message holding exactly the bytes
TCP would send. The client is the sink of its own
:class:`~msgsvc.dispatch.pipeline.ReplyPipeline`, as a TCP connection is, so
order, commit waits, events, flow control and closing work the same; a
streamed body is gathered into its one message. Messages that arrive while
the pipeline holds reading back wait in order, and the socket stops being read.

Twisted's ``twisted.web.websocket`` does the handshake and the frames; this
module sees whole messages.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime, ISSLTransport
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from twisted.web.server import Request
from twisted.web.websocket import WebSocketTransport
from wsproto.utilities import LocalProtocolError
from zope.interface import implementer

from msgsvc.dispatch.pipeline import ReplyPipeline
from msgsvc.dispatch.table import CommandTable
from msgsvc.domain.broker import Broker
from msgsvc.domain.events import Event
from msgsvc.domain.interfaces import IClient
from msgsvc.domain.session import Session
from msgsvc.protocol.framing import FramingError, message_literal, split_message
from msgsvc.protocol.wire import FULL, host_port
from msgsvc.transports.stream import GREETING
from msgsvc.transports.traffic import Traffic
from msgsvc.transports.websocket_input import InputBound, RawTransport, input_limit

__all__ = ["WebSocketClient", "WebSocketFactory"]

log = Logger()


@implementer(IClient, IPushProducer)
class WebSocketClient(TimeoutMixin):
    """One WebSocket client: a ``twisted.web.websocket`` protocol, and the sink of its reply pipeline."""

    transport_name = "ws"

    def __init__(
        self,
        broker: Broker,
        table: CommandTable,
        clock: IReactorTime,
        peer: tuple[str, int],
        raw: RawTransport,
        traffic: Traffic,
        channel: Any = None,
    ) -> None:
        """``channel``: the HTTP channel the WebSocket was upgraded from, whose input is bounded (InputBound)."""
        self.broker = broker
        self.table = table
        self.peer = peer
        self.traffic = traffic
        self._clock = clock
        self._raw = raw
        self._ws: WebSocketTransport | None = None
        self.session: Session | None = None
        self.replies = ReplyPipeline(self, broker.durability)
        self._parts: list[bytes] = []
        """The pieces of a streamed reply, sent as one message once it is complete."""
        self._inbox: deque[bytes] = deque()
        """Messages received and not yet handled (reading is paused, or one is being handled)."""
        self._reading_paused = False
        self._handling = False
        self._producing = False
        self._channel = channel
        self._input = InputBound(input_limit(broker.config), self._sent_too_much)

    def callLater(self, period: float, func: Callable[[], object]) -> IDelayedCall:
        """The idle timer (TimeoutMixin's) runs on the broker's clock."""
        return self._clock.callLater(period, func)

    # -- twisted.web.websocket's WebSocketProtocol -------------------------------

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self._ws = transport

    def negotiationFinished(self) -> None:
        """The handshake is done: take a slot and greet, as a TCP connection does."""
        ws = self._ws
        assert ws is not None  # negotiation started
        ws.detachProducer()  # the HTTP channel produced for the connection until the upgrade; now this client does
        if self._channel is not None:
            self._input.watch(self._channel)
        self.session = self.broker.open_session(self)
        if self.session is None:
            self.write(FULL.encode())
            self.replies.end()
            return
        self.session.secure = ISSLTransport.providedBy(self._raw)  # WSS: LOGIN from afar needs it (tls-required)
        self.replies.client_id = self.session.id
        ws.attachProducer(self)
        self._producing = True
        self.write(GREETING)
        self.setTimeout(self.broker.config.idle_timeout)

    def _sent_too_much(self) -> None:
        log.info(
            "WebSocket client {peer} sent over {limit} bytes without completing a message; disconnecting",
            peer=host_port(self.peer),
            limit=self._input.limit,
            category="ERROR",
        )
        self.replies.abort()

    def textMessageReceived(self, message: str) -> None:
        self.bytesMessageReceived(message.encode())

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        self.traffic.received += len(data)
        self._input.completed()
        self._inbox.append(bytes(data))
        self._handle_inbox()

    def pongReceived(self, payload: bytes) -> None:
        """The server sends no pings."""

    def connectionLost(self, reason: Failure) -> None:
        self.setTimeout(None)
        self._producing = False
        self._inbox.clear()
        self._parts.clear()
        self.replies.lost()
        if self.session is not None:
            self.broker.close_session(self.session)

    # -- IClient ---------------------------------------------------------------------

    def send_event(self, event: Event) -> None:
        self.replies.send_event(event)

    def close(self, reason: str) -> None:
        """Say ``* BYE <reason>`` and close (at once if a payload is being written)."""
        self.replies.bye(reason)

    def timeoutConnection(self) -> None:
        """No progress for --idle-timeout: as for a TCP connection."""
        replies = self.replies
        if replies.ended or replies.stalled:
            log.info("client {id} stopped reading; disconnecting", id=replies.client_id, category="CONNECTION")
            replies.abort()
        elif replies.pending:
            self.resetTimeout()
        else:
            self.close("idle-timeout")

    # -- framing -----------------------------------------------------------------------

    def _handle_inbox(self) -> None:
        """Handle the waiting messages in order, for as long as reading is not paused (never re-entered)."""
        if self._handling:
            return
        self._handling = True
        try:
            while self._inbox and not self._reading_paused:
                self._handle(self._inbox.popleft())
        finally:
            self._handling = False

    def _handle(self, message: bytes) -> None:
        replies = self.replies
        if replies.closing or replies.failed:
            return
        try:
            self._dispatch(message)
        except Exception:
            replies.fail(Failure())

    def _dispatch(self, message: bytes) -> None:
        config = self.broker.config
        try:
            request, rest = split_message(message, config.max_line)
            if request is None:
                return
            plan = self.table.prepare(request)
            literal = None
            if rest or request.literal_size is not None:  # more than one plain command line
                limit = 0 if request.literal_size is None else plan.literal_limit(config)
                literal = message_literal(request, rest, limit)
        except FramingError as refusal:
            error = refusal.reply
            self.table.refusals.refused(f"ws {host_port(self.peer)}", error.code, error.text)
            self.replies.deliver(error, refusal.tag)
            self.resetTimeout()
            return
        if literal is not None:
            sink = plan.literal_sink(self.broker, self.session)
            if sink is not None:
                sink.write(literal)
                literal = sink.finish()
            request.literal = literal
        self.resetTimeout()
        self.replies.deliver(self.table.dispatch(self.broker, self.session, request, plan), request.tag)

    # -- IPushProducer: the socket's buffer fills and drains ----------------------------

    def pauseProducing(self) -> None:
        self.replies.pause_output()

    def resumeProducing(self) -> None:
        self.replies.resume_output()

    def stopProducing(self) -> None:
        """The connection is going away; connectionLost does the cleanup."""

    # -- the pipeline's sink ---------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """The end of a reply or event: one message (with the pieces of a streamed reply before it)."""
        if self._parts:
            self._parts.append(data)
            data = b"".join(self._parts)
            self._parts.clear()
        ws = self._ws
        assert ws is not None  # negotiated
        self.traffic.sent += len(data)
        try:
            ws.sendBytesMessage(data)
        except LocalProtocolError:  # the client has closed the WebSocket; connectionLost follows
            pass

    def write_part(self, data: bytes) -> None:
        self._parts.append(data)

    def pause_reading(self) -> None:
        self._reading_paused = True
        self._raw.pauseProducing()

    def resume_reading(self) -> None:
        self._reading_paused = False
        self._raw.resumeProducing()
        self._handle_inbox()

    def end(self) -> None:
        """Close the WebSocket (code 1000) once what has been written is sent."""
        ws = self._ws
        assert ws is not None  # negotiated
        self._inbox.clear()
        if self._producing:
            self._producing = False
            ws.detachProducer()  # a paused producer would hold the close back
        try:
            ws.loseConnection()
        except LocalProtocolError:  # the client closed first; the connection is closing already
            pass
        self.resetTimeout()  # the client has --idle-timeout to read the last replies, then it is cut off

    def abort(self) -> None:
        self._inbox.clear()
        self._raw.abortConnection()

    def progress(self) -> None:
        self.resetTimeout()

    def log_failure(self, failure: Failure) -> None:
        """A bug in framing or in writing replies: logged once; the messages not yet handled are dropped."""
        log.failure("WebSocket client {peer} failed", failure, peer=host_port(self.peer), category="ERROR")
        self._inbox.clear()
        self._parts.clear()


class WebSocketFactory:
    """Builds a :class:`WebSocketClient` per upgraded request (a ``twisted.web.websocket`` server factory)."""

    def __init__(self, broker: Broker, table: CommandTable, clock: IReactorTime) -> None:
        self.broker = broker
        self.table = table
        self.clock = clock
        self.traffic = Traffic()

    def buildProtocol(self, request: Request) -> WebSocketClient:
        channel = request.channel  # its idle timer stays off: Twisted stops it while a request (this one) is open
        raw = channel.transport
        assert isinstance(raw, RawTransport)  # a TCP or TLS connection
        address = request.getClientAddress()
        peer = (address.host, address.port) if isinstance(address, (IPv4Address, IPv6Address)) else ("", 0)
        return WebSocketClient(self.broker, self.table, self.clock, peer, raw, self.traffic, channel)
