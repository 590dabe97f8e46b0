# -*- test-case-name: tests.test_tcp -*-
"""The TCP front end: frames lines and literals, keeps replies in order, applies flow control.

It parses nothing beyond framing: every request goes to the shared command
table, every reply comes back as a :class:`msgsvc.wire.Reply`.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer, IReactorTime, ITCPTransport
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from msgsvc import __version__
from msgsvc.broker import Broker
from msgsvc.commands import INTERNAL_ERROR, CommandTable, LiteralSink, Unconfirmed
from msgsvc.interfaces import IClient
from msgsvc.session import Session
from msgsvc.wire import CRLF, FULL, BodySource, Err, Reply, Request, StreamedData, event, parse_request

log = Logger()

GREETING = f"OK msgsvc {__version__} ready; HELP lists commands".encode() + CRLF
MAX_PENDING_REPLIES = 64
"""Replies a client may have outstanding before the server stops reading its commands."""
MAX_EVENT_BACKLOG = 1 << 20
"""Event bytes queued for a client that does not read before it is disconnected."""
CHUNK = 256 * 1024
"""Bytes pulled from a streamed body per write."""


@dataclass(slots=True)
class _Slot:
    """A reply position in the pipeline, filled when its command completes."""

    tag: bytes | None
    reply: Reply | None = None
    unconfirmed: bool = False
    """The reply waits for the commit of the changes made before it."""


@dataclass(slots=True)
class _Body:
    """The payload of a streamed DATA reply being written."""

    source: BodySource
    remaining: int


@implementer(IClient, IPushProducer, IHalfCloseableProtocol)
class Connection(LineReceiver, TimeoutMixin):
    """One TCP client."""

    delimiter = b"\n"
    transport_name = "tcp"
    max_payload = None

    def __init__(self, broker: Broker, table: CommandTable, clock: IReactorTime) -> None:
        self.broker = broker
        self.table = table
        self.callLater = clock.callLater
        self.MAX_LENGTH = broker.config.max_line + 1  # room for the CR we strip
        self.session: Session | None = None
        self._slots: list[_Slot] = []
        """Replies in order; at most MAX_PENDING_REPLIES, so a list (56 bytes empty; a deque is 760) will do."""
        self._body: _Body | None = None
        self._held_events: list[bytes] = []
        self._held_bytes = 0
        self._literal: Request | None = None
        self._literal_sink: LiteralSink | None = None
        self._literal_discarded = False
        self._literal_parts: list[bytes] = []
        self._literal_missing = 0
        self._newline_after_literal = b""
        self._pause_reasons: set[str] = set()
        self._output_paused = False
        self._event_backlog = 0
        self._closing = False
        self._input_ended = False
        self._executed = False
        """Whether the data being handled completed a command (which resets the idle timer)."""
        self._awaiting_commit = False

    # -- connection lifecycle --------------------------------------------

    @property
    def peer(self) -> tuple[str, int]:
        address = self.transport.getPeer()
        return address.host, address.port

    def connectionMade(self) -> None:
        self.session = self.broker.open_session(self)
        if self.session is None:
            self._closing = True
            self.transport.write(FULL.encode())
            self.transport.loseConnection()
            return
        if ITCPTransport.providedBy(self.transport):
            self.transport.setTcpNoDelay(True)  # replies are small and awaited: never hold one back (Nagle)
        self.transport.registerProducer(self, True)
        self.transport.write(GREETING)
        self.setTimeout(self.broker.config.idle_timeout)

    def connectionLost(self, reason: Failure) -> None:
        self.setTimeout(None)
        self._closing = True
        if self._body is not None:
            self._body.source.close()
            self._body = None
        self._slots.clear()
        self._literal_parts = []
        self._held_events = []
        self.clearLineBuffer()
        if self._literal_sink is not None:
            self._literal_sink.abort()
            self._literal_sink = None
        if self.session is not None:
            self.broker.close_session(self.session)

    def readConnectionLost(self) -> None:
        """The client finished sending (``nc -N``): answer what it sent, then close."""
        self._input_ended = True
        self._flush()

    def writeConnectionLost(self) -> None:
        """The client stopped reading; connectionLost follows."""

    def timeoutConnection(self) -> None:
        if self._slots or self._body is not None:
            self.resetTimeout()  # not idle: a reply is still on its way
        else:
            self.close("idle-timeout")

    # -- IClient -----------------------------------------------------------

    def send_event(self, line: bytes) -> None:
        if self._closing:
            return
        if self._body is not None:
            if self._held_bytes + len(line) > MAX_EVENT_BACKLOG:
                self._drop_slow_reader()
                return
            self._held_events.append(line)
            self._held_bytes += len(line)
            return
        if self._output_paused:
            self._event_backlog += len(line)
            if self._event_backlog > MAX_EVENT_BACKLOG:
                self._drop_slow_reader()
                return
        self.transport.write(line)

    def _drop_slow_reader(self) -> None:
        log.warn("client {id} does not read its events; disconnecting", id=self.session.id, category="CONNECTION")
        self._closing = True
        self.transport.abortConnection()

    def close(self, reason: str) -> None:
        if self._closing:
            return
        self._closing = True
        if self._body is not None:  # a BYE cannot go inside a payload
            self.transport.abortConnection()
            return
        self.transport.write(event("BYE", reason))
        self.transport.loseConnection()

    # -- framing -----------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        self._executed = False
        LineReceiver.dataReceived(self, data)
        if self._executed:  # a command, not mere bytes (which could trickle forever), shows the client is there
            self.resetTimeout()

    def lineReceived(self, line: bytes) -> None:
        if self._closing:
            return
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) >= self.MAX_LENGTH:  # the CR stripped, still over --max-line
            self.lineLengthExceeded(line)
            return
        request = parse_request(line)
        if request is None:
            return
        if request.literal_size is None:
            self._execute(request)
            return
        limit = self.table.literal_limit(request.verb, self.broker.config)
        if request.literal_size > limit:
            self._refuse(
                Err("too-big", f"literal of {request.literal_size} bytes exceeds the {limit}-byte limit"), request.tag
            )
            return
        self.setRawMode()
        self._literal = request
        self._literal_discarded = request.bad_tag or self.table.lookup(request.verb) is None  # refused anyway
        self._literal_sink = self.table.literal_sink(request, self.broker, self.session)
        self._literal_parts = []
        self._literal_missing = request.literal_size
        if not self._literal_missing:
            self._literal_complete()

    def _literal_complete(self) -> None:
        request, self._literal = self._literal, None
        sink, self._literal_sink = self._literal_sink, None
        request.literal = sink.finish() if sink is not None else b"".join(self._literal_parts)
        self._literal_parts = []
        self._newline_after_literal = b"\r\n"
        self._execute(request)

    def rawDataReceived(self, data: bytes) -> None:
        if self._literal is not None:
            part = data[: self._literal_missing]
            data = data[len(part) :]
            if self._literal_sink is not None:
                self._literal_sink.write(part)
            elif not self._literal_discarded:
                self._literal_parts.append(part)
            self._literal_missing -= len(part)
            if self._literal_missing:
                return
            self._literal_complete()
        # Consume one optional CRLF or LF after the literal, which may arrive in pieces.
        expected = self._newline_after_literal
        if expected and data:
            if data.startswith(expected):
                data = data[len(expected) :]
            elif expected == b"\r\n" and data.startswith(b"\n"):
                data = data[1:]
            elif expected == b"\r\n" and data == b"\r":
                self._newline_after_literal = b"\n"
                return
            elif expected == b"\n":
                data = b"\r" + data  # the CR was not part of a line ending after all
            self._newline_after_literal = b""
        if not self._newline_after_literal:
            self.setLineMode(data)

    def lineLengthExceeded(self, line: bytes) -> None:
        self._refuse(Err("line-too-long", f"command lines are limited to {self.broker.config.max_line} bytes"), None)

    def _refuse(self, error: Err, tag: bytes | None) -> None:
        """Send an error that leaves the stream unparseable, then close."""
        self.clearLineBuffer()
        self._slots.append(_Slot(tag, Err(error.code, error.text, closes=True)))
        self._closing = True
        LineReceiver.pauseProducing(self)  # nothing more is read from a connection that is closing
        self._flush()

    # -- replies, in order -------------------------------------------------

    def _execute(self, request: Request) -> None:
        if self._closing:
            return
        self._executed = True
        result = self.table.dispatch(self.broker, self.session, request)
        if isinstance(result, Reply):
            self._closing = result.closes  # after QUIT nothing more runs, though its reply may still wait its turn
            if not self._slots and self._body is None:  # nothing ahead of it: out at once
                self._write_reply(result, request.tag)
                if self._body is not None:
                    self._flush()  # start streaming the body
                return
            self._slots.append(_Slot(request.tag, result))
            self._flush()
        elif isinstance(result, Unconfirmed):
            self._closing = result.reply.closes
            self._slots.append(_Slot(request.tag, result.reply, unconfirmed=True))
            if not self._awaiting_commit:
                self._awaiting_commit = True
                self.broker.durability.when_committed(self._committed)
        else:
            slot = _Slot(request.tag)
            self._slots.append(slot)
            result.addCallback(self._completed, slot)
        if len(self._slots) >= MAX_PENDING_REPLIES:
            self._pause_reading("pipeline")

    def _completed(self, reply: Reply, slot: _Slot) -> None:
        slot.reply = reply
        self._flush()

    def _committed(self, error: Exception | None) -> None:
        """Every reply held so far may go: its changes are durable (or, on error, it becomes ERR internal)."""
        self._awaiting_commit = False
        for slot in self._slots:
            if slot.unconfirmed:
                slot.unconfirmed = False
                if error is not None:
                    slot.reply = INTERNAL_ERROR
        self._flush()

    def _flush(self) -> None:
        """Write every completed reply at the head of the pipeline."""
        while self.transport is not None and not self.transport.disconnecting:
            if self._body is not None and not self._pump():
                return
            if not self._slots or self._slots[0].reply is None or self._slots[0].unconfirmed:
                break
            slot = self._slots.pop(0)
            self._write_reply(slot.reply, slot.tag)
        if self._input_ended and not self._slots and self._body is None:
            self.transport.loseConnection()
        elif len(self._slots) < MAX_PENDING_REPLIES:
            self._resume_reading("pipeline")

    def _write_reply(self, reply: Reply, tag: bytes | None) -> None:
        if isinstance(reply, StreamedData):
            self.transport.write(reply.header(tag))
            self._body = _Body(reply.source, reply.size)
        else:
            self.transport.write(reply.encode(tag))
        if reply.closes:
            self._closing = True
            self.transport.loseConnection()

    def _pump(self) -> bool:
        """Write the streamed body while the client keeps up; True once it is complete."""
        body = self._body
        while body.remaining and not self._output_paused:
            chunk = body.source.read(min(CHUNK, body.remaining))
            if not chunk:
                log.error("a streamed payload ended {n} bytes early", n=body.remaining, category="ERROR")
                self._body = None
                body.source.close()
                self._closing = True
                self.transport.abortConnection()
                return False
            body.remaining -= len(chunk)
            self.transport.write(chunk)
        if body.remaining:
            return False
        self._body = None
        body.source.close()
        self.transport.write(CRLF)
        held, self._held_events = self._held_events, []
        self._held_bytes = 0
        for line in held:
            self.send_event(line)
        return True

    # -- flow control ------------------------------------------------------

    def pauseProducing(self) -> None:
        """The transport's buffer is full: stop writing bodies and reading commands."""
        self._output_paused = True
        self._pause_reading("output")

    def resumeProducing(self) -> None:
        """The transport drained: carry on."""
        self._output_paused = False
        self._event_backlog = 0
        self._flush()
        if not self._output_paused:  # writing the body may have filled the buffer again
            self._resume_reading("output")

    def stopProducing(self) -> None:
        """The connection is going away; connectionLost does the cleanup."""

    def _pause_reading(self, reason: str) -> None:
        if not self._pause_reasons:
            LineReceiver.pauseProducing(self)
        self._pause_reasons.add(reason)

    def _resume_reading(self, reason: str) -> None:
        if reason in self._pause_reasons:
            self._pause_reasons.discard(reason)
            if not self._pause_reasons and not self._closing:
                LineReceiver.resumeProducing(self)


class ConnectionFactory(Factory):
    """Builds a :class:`Connection` per TCP client, all sharing one broker and command table."""

    noisy = False

    def __init__(self, broker: Broker, table: CommandTable, clock: IReactorTime) -> None:
        self.broker = broker
        self.table = table
        self.clock = clock

    def buildProtocol(self, addr) -> Connection:
        connection = Connection(self.broker, self.table, self.clock)
        connection.factory = self
        return connection
