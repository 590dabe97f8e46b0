# -*- test-case-name: tests.test_tcp -*-
"""The TCP front end: frames lines and literals, keeps replies in order, applies flow control.

It parses nothing beyond framing: every request goes to the shared command
table, every reply comes back as a :class:`msgsvc.wire.Reply`.

The hot path is written for throughput and small idle connections (see the
README's "Performance" section):

- framing scans the receive buffer with an offset, so a large pipelined buffer
  costs linear time (``LineReceiver`` re-splits the rest of the buffer for every
  line, which is quadratic);
- replies that complete while a batch of received bytes is processed are
  joined into one write, and a write to an idle socket is tried at once rather
  than on the reactor's next turn;
- a connection holds no timer: one :class:`IdleTimer` per factory keeps every
  connection in order of last activity and wakes only for the oldest.
"""

from __future__ import annotations

from twisted.internet import tcp
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from msgsvc import __version__
from msgsvc.broker import Broker
from msgsvc.commands import CommandTable, LiteralSink
from msgsvc.interfaces import IClient
from msgsvc.session import Session
from msgsvc.wire import CRLF, BodySource, Err, Reply, Request, StreamedData, event, parse_request

log = Logger()

GREETING = f"OK msgsvc {__version__} ready; HELP lists commands".encode() + CRLF
FULL = Err("full", "Server is full, try again later.")
MAX_PENDING_REPLIES = 64
"""Replies a client may have outstanding before the server stops reading its commands."""
MAX_EVENT_BACKLOG = 1 << 20
"""Event bytes queued for a client that does not read before it is disconnected."""
CHUNK = 256 * 1024
"""Bytes pulled from a streamed body per write."""

_PIPELINE = 1
"""A reason to stop reading commands: too many replies outstanding."""
_OUTPUT = 2
"""A reason to stop reading commands: the transport's write buffer is full."""


class IdleTimer:
    """Closes connections that completed no command for ``timeout`` seconds, with one timer for all of them.

    Connections are kept in a dict in order of their last activity (touching one
    moves it to the end), so the oldest is always first and the single delayed
    call is due when that one would time out: constant work per command and no
    timer object per connection.
    """

    __slots__ = ("_call", "_clock", "_last", "timeout")

    def __init__(self, clock: IReactorTime, timeout: float) -> None:
        self._clock = clock
        self.timeout = timeout
        self._last: dict[Connection, float] = {}
        self._call: IDelayedCall | None = None

    def touch(self, connection: Connection) -> None:
        """The connection was active now: its idle time starts again."""
        last = self._last
        last.pop(connection, None)
        last[connection] = self._clock.seconds()
        if self._call is None:
            self._call = self._clock.callLater(self.timeout, self._expire)

    def forget(self, connection: Connection) -> None:
        """The connection is gone."""
        self._last.pop(connection, None)
        if not self._last and self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None

    def _expire(self) -> None:
        self._call = None
        now = self._clock.seconds()
        last = self._last
        while last:
            connection, active = next(iter(last.items()))
            if active + self.timeout > now:
                self._call = self._clock.callLater(active + self.timeout - now, self._expire)
                return
            del last[connection]
            connection.timeoutConnection()  # may touch it again (it is waiting for a reply)


class _Slot:
    """A reply position in the pipeline, filled when its command completes."""

    __slots__ = ("reply", "tag")

    def __init__(self, tag: bytes | None, reply: Reply | None = None) -> None:
        self.tag = tag
        self.reply = reply


class _Body:
    """The payload of a streamed DATA reply being written."""

    __slots__ = ("remaining", "source")

    def __init__(self, source: BodySource, remaining: int) -> None:
        self.source = source
        self.remaining = remaining


@implementer(IClient, IPushProducer)
class Connection(Protocol):
    """One TCP client.

    Attributes live in ``__slots__`` and containers are created only when
    needed, so an idle connection costs little memory.
    """

    __slots__ = (
        "_batch",
        "_body",
        "_buffer",
        "_busy",
        "_closing",
        "_direct",
        "_event_backlog",
        "_held_events",
        "_idle",
        "_late",
        "_literal",
        "_literal_missing",
        "_literal_parts",
        "_literal_sink",
        "_newline_after_literal",
        "_output_paused",
        "_paused",
        "_slots",
        "broker",
        "connected",
        "factory",
        "max_line",
        "session",
        "table",
        "transport",
    )

    transport_name = "tcp"
    max_payload = None

    def __init__(self, broker: Broker, table: CommandTable, clock: IReactorTime, idle: IdleTimer | None = None) -> None:
        self.broker = broker
        self.table = table
        self.factory = None
        self.connected = 0
        self.transport = None
        self.max_line = broker.config.max_line
        self._idle = idle if idle is not None else IdleTimer(clock, broker.config.idle_timeout)
        self.session: Session | None = None
        self._buffer = b""
        self._late: list[bytes] | None = None
        """Bytes received while a batch was being processed (re-entrant delivery)."""
        self._busy = False
        self._batch: list[bytes] | None = None
        """Reply bytes gathered while a batch is processed, written together at its end."""
        self._direct = False
        self._slots: list[_Slot] = []
        self._body: _Body | None = None
        self._held_events: list[bytes] | None = None
        self._literal: Request | None = None
        self._literal_sink: LiteralSink | None = None
        self._literal_parts: list[bytes] | None = None
        self._literal_missing = 0
        self._newline_after_literal = False
        self._paused = 0
        """Why commands are not read: a mask of _PIPELINE and _OUTPUT."""
        self._output_paused = False
        self._event_backlog = 0
        self._closing = False

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
        # Replies may go straight to the socket when Twisted holds nothing unsent for it.
        self._direct = type(self.transport) is tcp.Server
        self.transport.registerProducer(self, True)
        self.transport.write(GREETING)
        self._idle.touch(self)

    def connectionLost(self, reason: Failure = None) -> None:
        self._idle.forget(self)
        self._closing = True
        if self._body is not None:
            self._body.source.close()
            self._body = None
        self._slots.clear()
        if self._literal_sink is not None:
            self._literal_sink.abort()
            self._literal_sink = None
        if self.session is not None:
            self.broker.close_session(self.session)

    def timeoutConnection(self) -> None:
        """No command completed for the idle timeout."""
        if self._slots or self._body is not None:
            self._idle.touch(self)  # not idle: a reply is still on its way
        else:
            self.close("idle-timeout")

    # -- IClient -----------------------------------------------------------

    def send_event(self, line: bytes) -> None:
        if self._closing:
            return
        if self._body is not None:
            if self._held_events is None:
                self._held_events = []
            self._held_events.append(line)
            return
        if self._output_paused:
            self._event_backlog += len(line)
            if self._event_backlog > MAX_EVENT_BACKLOG:
                log.warn(
                    "client {id} does not read its events; disconnecting", id=self.session.id, category="CONNECTION"
                )
                self._closing = True
                self.transport.abortConnection()
                return
        self._write(line)

    def close(self, reason: str) -> None:
        if self._closing:
            return
        self._closing = True
        if self._body is not None:  # a BYE cannot go inside a payload
            self.transport.abortConnection()
            return
        self._write(event("BYE", reason))
        self._lose_connection()

    # -- writing -----------------------------------------------------------

    def _write(self, data: bytes) -> None:
        """Write reply or event bytes, gathered into one write while a batch is processed."""
        if self._batch is not None:
            self._batch.append(data)
        else:
            self._send(data)

    def _write_batch(self) -> None:
        """Write what the current batch gathered."""
        batch, self._batch = self._batch, None
        if batch:
            self._send(batch[0] if len(batch) == 1 else b"".join(batch))

    def _send(self, data: bytes) -> None:
        """Hand bytes to the transport, trying the socket at once when nothing is waiting before them.

        Twisted's ``write`` only buffers and sends on the reactor's next turn
        (registering for writability and unregistering again). When its buffer
        is empty, a ``send`` now keeps the order and saves that round trip;
        whatever the socket does not take is left to ``write`` as usual.
        """
        transport = self.transport
        if self._direct and not transport._tempDataLen and transport.offset == len(transport.dataBuffer):
            if not transport.connected or transport.disconnecting:
                return transport.write(data)
            try:
                sent = transport.socket.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = 0  # let Twisted's own write meet and report the error
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)

    def _lose_connection(self) -> None:
        """Close once everything written so far has gone."""
        self._write_batch()
        self.transport.loseConnection()

    # -- framing -----------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Frame lines and literals from the received bytes and run the commands they hold."""
        if self._busy:
            if self._late is None:
                self._late = []
            self._late.append(data)
            return
        self._buffer += data
        self._process()

    def _process(self) -> None:
        """Run every complete command in the buffer while reading is not paused."""
        if self._busy:
            return
        self._busy = True
        self._batch = []
        buf = self._buffer
        pos = 0
        try:
            while True:
                end = len(buf)
                while pos < end and not self._paused and not self._closing:
                    if self._literal is not None:
                        take = min(self._literal_missing, end - pos)
                        part = buf[pos : pos + take]
                        pos += take
                        if self._literal_sink is not None:
                            self._literal_sink.write(part)
                        else:
                            self._literal_parts.append(part)
                        self._literal_missing -= take
                        if self._literal_missing:
                            break
                        self._literal_complete()
                        continue
                    if self._newline_after_literal:
                        # Consume one optional CRLF or LF after the literal, which may arrive in pieces.
                        if buf[pos] == 10:  # LF
                            pos += 1
                        elif buf[pos] == 13:  # CR
                            if pos + 1 == end:
                                break  # wait to see whether an LF follows
                            if buf[pos + 1] == 10:
                                pos += 2
                        self._newline_after_literal = False
                        continue
                    newline = buf.find(b"\n", pos)
                    if newline < 0:
                        if end - pos > self.max_line + 1:
                            pos = end
                            self.lineLengthExceeded()
                        break
                    if newline - pos > self.max_line + 1:
                        pos = end
                        self.lineLengthExceeded()
                        break
                    line = buf[pos:newline]
                    pos = newline + 1
                    self.lineReceived(line)
                    if self.transport is None or self.transport.disconnecting:
                        break
                if self._closing:
                    pos = len(buf)
                if not self._late:
                    break
                buf = buf[pos:] + b"".join(self._late)
                self._late = None
                pos = 0
            self._buffer = buf[pos:] if pos else buf
            if self._closing:
                self._buffer = b""
        finally:
            self._busy = False
            self._write_batch()

    def lineReceived(self, line: bytes) -> None:
        """One command line (without its LF)."""
        if self._closing:
            return
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self.max_line:
            self.lineLengthExceeded()
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
        self._literal = request
        self._literal_sink = self.table.literal_sink(request, self.broker, self.session)
        self._literal_parts = []
        self._literal_missing = request.literal_size
        if not self._literal_missing:
            self._literal_complete()

    def _literal_complete(self) -> None:
        request, self._literal = self._literal, None
        sink, self._literal_sink = self._literal_sink, None
        request.literal = sink.finish() if sink is not None else b"".join(self._literal_parts)
        self._literal_parts = None
        self._newline_after_literal = True
        self._execute(request)

    def lineLengthExceeded(self, line: bytes = b"") -> None:
        """A command line longer than ``--max-line``: refuse it and close."""
        self._refuse(Err("line-too-long", f"command lines are limited to {self.max_line} bytes"), None)

    def _refuse(self, error: Err, tag: bytes | None) -> None:
        """Send an error that leaves the stream unparseable, then close."""
        self._buffer = b""
        self._slots.append(_Slot(tag, Err(error.code, error.text, closes=True)))
        self._closing = True
        self._flush()

    # -- replies, in order -------------------------------------------------

    def _execute(self, request: Request) -> None:
        if self._closing:
            return
        self._idle.touch(self)
        result = self.table.dispatch(self.broker, self.session, request)
        if not isinstance(result, Deferred):
            if not self._slots and self._body is None and not isinstance(result, StreamedData):
                self._write_reply(result, request.tag)  # nothing ahead of it: no slot needed
                return
            self._slots.append(_Slot(request.tag, result))
            self._flush()
        else:
            slot = _Slot(request.tag)
            self._slots.append(slot)
            result.addCallback(self._completed, slot)
        if len(self._slots) >= MAX_PENDING_REPLIES:
            self._pause_reading(_PIPELINE)

    def _completed(self, reply: Reply, slot: _Slot) -> None:
        slot.reply = reply
        self._flush()

    def _flush(self) -> None:
        """Write every completed reply at the head of the pipeline."""
        slots = self._slots
        while self.transport is not None and not self.transport.disconnecting:
            if self._body is not None and not self._pump():
                return
            if not slots or slots[0].reply is None:
                break
            slot = slots.pop(0)
            self._write_reply(slot.reply, slot.tag)
        if len(slots) < MAX_PENDING_REPLIES:
            self._resume_reading(_PIPELINE)

    def _write_reply(self, reply: Reply, tag: bytes | None) -> None:
        if isinstance(reply, StreamedData):
            self._write(reply.header(tag))
            self._body = _Body(reply.source, reply.size)  # _flush pumps it next
        else:
            self._write(reply.encode(tag))
        if reply.closes:
            self._closing = True
            self._lose_connection()

    def _pump(self) -> bool:
        """Write the streamed body while the client keeps up; True once it is complete."""
        body = self._body
        if body is None:
            return True
        in_batch = self._batch is not None
        self._write_batch()  # what came before the body goes first; the body is written under flow control
        if in_batch:
            self._batch = []
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
            self._send(chunk)
        if body.remaining:
            return False
        self._body = None
        body.source.close()
        self._write(CRLF)
        held, self._held_events = self._held_events, None
        for line in held or ():
            self.send_event(line)
        return True

    # -- flow control ------------------------------------------------------

    def pauseProducing(self) -> None:
        """The transport's buffer is full: stop writing bodies and reading commands."""
        self._output_paused = True
        self._pause_reading(_OUTPUT)

    def resumeProducing(self) -> None:
        """The transport drained: carry on."""
        self._output_paused = False
        self._event_backlog = 0
        self._flush()
        if not self._output_paused:  # writing the body may have filled the buffer again
            self._resume_reading(_OUTPUT)

    def stopProducing(self) -> None:
        """The connection is going away; connectionLost does the cleanup."""

    def _pause_reading(self, reason: int) -> None:
        if not self._paused and self.transport is not None:
            self.transport.pauseProducing()
        self._paused |= reason

    def _resume_reading(self, reason: int) -> None:
        if self._paused & reason:
            self._paused &= ~reason
            if not self._paused and not self._closing:
                self.transport.resumeProducing()
                if self._buffer and not self._busy:
                    self._process()  # commands that arrived while paused


class ConnectionFactory(Factory):
    """Builds a :class:`Connection` per TCP client, all sharing one broker, command table and idle timer."""

    noisy = False

    def __init__(self, broker: Broker, table: CommandTable, clock: IReactorTime) -> None:
        self.broker = broker
        self.table = table
        self.clock = clock
        self.idle = IdleTimer(clock, broker.config.idle_timeout)

    def buildProtocol(self, addr) -> Connection:
        connection = Connection(self.broker, self.table, self.clock, self.idle)
        connection.factory = self
        return connection
