# -*- test-case-name: tests.test_tcp,tests.test_lifecycle,tests.test_input_budget -*-
"""The TCP front end: frames lines and literals, keeps replies in order, applies flow control.

It parses nothing beyond framing: every request goes to the shared command
table, every reply comes back as a :class:`msgsvc.protocol.wire.Reply` (written by
:class:`msgsvc.transports.tcp_replies.ReplyPipeline`).

A connection ends in one of two ways. ``_end`` closes once what has been
written is sent; it first unregisters the connection as the transport's push
producer, since a transport never closes while its producer is paused (it
would wait for the producer to finish). ``_abort`` drops the connection at
once: for a client that has stopped reading, which nothing else would free.
Idle means no progress: no command completed, no literal bytes arrived, and
nothing of our output taken; a client that waits for a reply of ours is not idle.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer, IReactorTime, ITCPTransport
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from msgsvc import __version__
from msgsvc.dispatch.table import INTERNAL_ERROR, CommandTable
from msgsvc.domain.broker import Broker
from msgsvc.domain.events import Bye
from msgsvc.domain.interfaces import IClient
from msgsvc.domain.session import Session
from msgsvc.protocol.events import encode_event
from msgsvc.protocol.wire import CRLF, FULL, Err, Request, parse_request
from msgsvc.transports.input_budget import InputBudget
from msgsvc.transports.literals import LiteralReading
from msgsvc.transports.tcp_replies import CHUNK, MAX_EVENT_BACKLOG, MAX_PENDING_REPLIES, ReplyPipeline

__all__ = ["CHUNK", "GREETING", "MAX_EVENT_BACKLOG", "MAX_PENDING_REPLIES", "Connection", "ConnectionFactory"]

log = Logger()

GREETING = f"OK msgsvc {__version__} ready; HELP lists commands".encode() + CRLF
OVER_BUDGET = Err("too-big", "the server holds too much unfinished input right now; try again later")
"""The reply to a literal skipped because all clients together hold --max-pending-input of unfinished input."""


def _guarded(method: Callable[..., None]) -> Callable[..., None]:
    """An entry point (from the transport or a Deferred) whose unexpected exception becomes ERR internal."""

    @functools.wraps(method)
    def guarded(self: Connection, *args: object) -> None:
        try:
            method(self, *args)
        except Exception:
            self._internal_error(Failure())

    return guarded


@implementer(IClient, IPushProducer, IHalfCloseableProtocol)
class Connection(ReplyPipeline, LiteralReading, LineReceiver, TimeoutMixin):
    """One TCP client."""

    delimiter = b"\n"
    transport_name = "tcp"
    max_payload = None

    def __init__(
        self, broker: Broker, table: CommandTable, clock: IReactorTime, budget: InputBudget | None = None
    ) -> None:
        """``budget``: shared by every connection of a listener; by default this connection's own."""
        self.broker = broker
        self.table = table
        self.callLater = clock.callLater
        self.MAX_LENGTH = broker.config.max_line + 1  # room for the CR we strip
        self.budget = budget if budget is not None else InputBudget(broker.config.max_pending_input)
        self.session: Session | None = None
        self._init_replies()
        self._init_literals()
        self._pause_reasons: set[str] = set()
        self._producing = False
        """Registered as the transport's push producer."""
        self._closing = False
        """Nothing more is run: QUIT, a closing error, or the connection is ending."""
        self._ending = False
        """The transport was told to close (``_end`` or ``_abort``)."""
        self._failed = False
        self._progress = False
        """Whether the data being handled completed a command or brought literal bytes (resets the idle timer)."""

    # -- connection lifecycle --------------------------------------------

    @property
    def peer(self) -> tuple[str, int]:
        address = self.transport.getPeer()
        return address.host, address.port

    def connectionMade(self) -> None:
        self.session = self.broker.open_session(self)
        if self.session is None:
            self._closing = self._ending = True
            self.transport.write(FULL.encode())
            self.transport.loseConnection()
            return
        if ITCPTransport.providedBy(self.transport):
            self.transport.setTcpNoDelay(True)  # replies are small and awaited: never hold one back (Nagle)
        self.transport.registerProducer(self, True)
        self._producing = True
        self.transport.write(GREETING)
        self.setTimeout(self.broker.config.idle_timeout)

    def connectionLost(self, reason: Failure) -> None:
        self.setTimeout(None)
        self._closing = self._ending = True
        self._producing = False
        self._discard_replies()
        self.clearLineBuffer()
        self._drop_literal()
        if self.session is not None:
            self.broker.close_session(self.session)

    @_guarded
    def readConnectionLost(self) -> None:
        """The client finished sending (``nc -N``): answer what it sent, then close."""
        self._input_ended = True
        self._flush()

    def writeConnectionLost(self) -> None:
        """The client stopped reading; connectionLost follows."""

    def timeoutConnection(self) -> None:
        """No progress for --idle-timeout: nothing read from the client, nor taken by it."""
        if self._ending or self._stalled:  # it does not read: a BYE would not reach it, nor may one cut a payload
            log.info("client {id} stopped reading; disconnecting", id=self.session.id, category="CONNECTION")
            self._abort()
        elif self._slots:
            self.resetTimeout()  # not idle: it waits for a reply of ours (RECV with a wait, a commit)
        else:
            self.close("idle-timeout")

    def close(self, reason: str) -> None:
        """IClient: say ``* BYE <reason>`` and close (at once if a payload is being written)."""
        if self._ending:
            return
        if self._body is not None:  # a BYE cannot go inside a payload
            self._abort()
            return
        self.transport.write(encode_event(Bye(reason)))
        self._end()

    def _end(self) -> None:
        """Close once what has been written is sent; a paused push producer must not hold the close back."""
        if self._ending:
            return
        self._closing = self._ending = True
        self._drop_literal()
        if self._producing:
            self._producing = False
            self.transport.unregisterProducer()
        self.transport.loseConnection()
        self.resetTimeout()  # the client has --idle-timeout to read the last replies, then it is cut off

    def _abort(self) -> None:
        self._closing = self._ending = True
        self._drop_literal()
        self.transport.abortConnection()

    # -- framing -----------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._failed:
            return
        self._progress = False
        try:
            LineReceiver.dataReceived(self, data)
        except Exception:
            self._internal_error(Failure())
            return
        if self._progress:  # a command or literal bytes, not mere line bytes (which could trickle forever)
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
        self._read_literal(request)

    def _over_budget(self, tag: bytes | None) -> None:
        """A literal was skipped: all clients together hold --max-pending-input of unfinished input."""
        self._log_refusal(OVER_BUDGET)
        self._deliver(OVER_BUDGET, tag)

    def lineLengthExceeded(self, line: bytes) -> None:
        self._refuse(Err("line-too-long", f"command lines are limited to {self.broker.config.max_line} bytes"), None)

    def _refuse(self, error: Err, tag: bytes | None) -> None:
        """Send an error that leaves the stream unparseable, then close."""
        if self._closing:  # the connection ends anyway; the error would never be sent
            self.clearLineBuffer()
            return
        self._log_refusal(error)
        self._closing_error(error, tag)

    def _closing_error(self, error: Err, tag: bytes | None) -> None:
        """Queue ``error`` behind the replies due, then close; nothing more is read."""
        self.clearLineBuffer()
        self._closing = True
        if not self._ending:
            LineReceiver.pauseProducing(self)  # nothing more is read from a connection that is closing
        self._deliver(Err(error.code, error.text, closes=True), tag)

    def _log_refusal(self, error: Err) -> None:
        host, port = self.peer
        self.table.refusals.refused(f"tcp {host}:{port}", error.code, error.text)

    def _internal_error(self, failure: Failure) -> None:
        """A bug in framing or in writing replies: log it once, answer ERR internal after the replies due, close."""
        if self._failed:
            return
        self._failed = True
        log.failure("TCP connection to {peer} failed", failure, peer=self.peer, category="ERROR")
        self._drop_literal()
        if self._ending:
            return
        try:
            self._closing_error(INTERNAL_ERROR, None)
        except Exception as error:  # the same bug again, most likely: its traceback is logged above
            log.error("cannot answer ERR internal ({error!r}); dropping the connection", error=error, category="ERROR")
            self._abort()

    # -- replies, in order -------------------------------------------------

    def _execute(self, request: Request) -> None:
        if self._closing:
            return
        self._progress = True
        self._deliver(self.table.dispatch(self.broker, self.session, request), request.tag)

    _completed = _guarded(ReplyPipeline._completed)
    _committed = _guarded(ReplyPipeline._committed)

    # -- flow control ------------------------------------------------------

    resumeProducing = _guarded(ReplyPipeline.resumeProducing)

    def _output_progress(self) -> None:
        if not self._ending:
            self.resetTimeout()

    def _pause_reading(self, reason: str) -> None:
        if not self._pause_reasons and not self._ending:
            LineReceiver.pauseProducing(self)
        self._pause_reasons.add(reason)

    def _resume_reading(self, reason: str) -> None:
        if reason in self._pause_reasons:
            self._pause_reasons.discard(reason)
            if not self._pause_reasons and not self._closing:
                LineReceiver.resumeProducing(self)


class ConnectionFactory(Factory):
    """Builds a :class:`Connection` per TCP client, all sharing one broker, command table and input budget."""

    noisy = False

    def __init__(self, broker: Broker, table: CommandTable, clock: IReactorTime) -> None:
        self.broker = broker
        self.table = table
        self.clock = clock
        self.budget = InputBudget(broker.config.max_pending_input)

    def buildProtocol(self, addr: object) -> Connection:
        connection = Connection(self.broker, self.table, self.clock, self.budget)
        connection.factory = self
        return connection
