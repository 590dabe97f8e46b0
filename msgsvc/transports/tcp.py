# -*- test-case-name: tests.test_tcp,tests.test_tcp_flow,tests.test_lifecycle,tests.test_input_budget -*-
"""The TCP front end (TLS too: the same protocol on an ``ssl:`` endpoint): frames lines and literals.

It parses nothing beyond framing: every request is prepared and dispatched by
the shared command table, and every result goes to the connection's
:class:`~msgsvc.dispatch.pipeline.ReplyPipeline`, which keeps replies in
order, waits for commits, streams bodies and holds events. The connection is
the pipeline's sink: it writes to the transport, pauses and resumes reading,
and closes.

A connection ends in one of two ways. ``end`` closes once what has been
written is sent; it first unregisters the connection as the transport's push
producer, since a transport never closes while its producer is paused (it
would wait for the producer to finish). ``abort`` drops the connection at
once: for a client that has stopped reading, which nothing else would free.
Idle means no progress: no command completed, no literal bytes arrived, and
nothing of our output taken; a client that waits for a reply of ours is not idle.

Replies are gathered while one read is handled and written with one
``transport.write`` at its end (one system call for a pipelined burst, not one
per reply); what is written at any other time (a reply that waited, an event
from another client) goes out at once. The gathered bytes are written before
anything else reaches the transport (a streamed body, a close), and as soon as
they reach GATHER_LIMIT, so the transport's flow control sees them in time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import (
    IDelayedCall,
    IHalfCloseableProtocol,
    IHandshakeListener,
    IPushProducer,
    IReactorTime,
    ISSLTransport,
    ITCPTransport,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from msgsvc.dispatch.pipeline import CHUNK, MAX_EVENT_BACKLOG, MAX_PENDING_REPLIES, ReplyPipeline
from msgsvc.dispatch.table import CommandTable
from msgsvc.domain.broker import Broker
from msgsvc.domain.events import Event
from msgsvc.domain.interfaces import IClient
from msgsvc.domain.session import Session
from msgsvc.protocol.wire import FULL
from msgsvc.transports.input_budget import InputBudget
from msgsvc.transports.literals import Framing
from msgsvc.transports.stream import GREETING, StreamTransport
from msgsvc.transports.traffic import Traffic

__all__ = ["CHUNK", "GREETING", "MAX_EVENT_BACKLOG", "MAX_PENDING_REPLIES", "Connection", "ConnectionFactory"]

log = Logger()

GATHER_LIMIT = 64 * 1024
"""Bytes of gathered replies written at once, without waiting for the end of the read (the transport's buffer size)."""


@implementer(IClient, IPushProducer, IHalfCloseableProtocol, IHandshakeListener)
class Connection(Framing, Protocol, TimeoutMixin):
    """One TCP client; the sink of its reply pipeline."""

    transport_name = "tcp"

    def __init__(
        self,
        broker: Broker,
        table: CommandTable,
        clock: IReactorTime,
        budget: InputBudget | None = None,
        traffic: Traffic | None = None,
    ) -> None:
        """``budget`` and ``traffic``: shared by every connection of a listener; by default this connection's own."""
        self.broker = broker
        self.traffic = traffic if traffic is not None else Traffic()
        self.table = table
        self._clock = clock
        self.MAX_LENGTH = broker.config.max_line + 1  # room for the CR we strip
        self.budget = budget if budget is not None else InputBudget(broker.config.max_pending_input)
        self.session: Session | None = None
        self.replies = ReplyPipeline(self, broker.durability, joins=True)
        self._init_framing()
        self._producing = False
        """Registered as the transport's push producer."""
        self._progress = False
        """Whether the data being handled completed a command or brought literal bytes (resets the idle timer)."""
        self._gathered: list[bytes] | None = None
        """Replies written while a read is handled, for one write at its end; None between reads."""
        self._gathered_bytes = 0

    # -- connection lifecycle --------------------------------------------

    @property
    def peer(self) -> tuple[str, int]:
        assert self.transport is not None  # connected
        address = self.transport.getPeer()
        assert isinstance(address, (IPv4Address, IPv6Address))  # served on TCP (or TLS over TCP)
        return address.host, address.port

    def callLater(self, period: float, func: Callable[[], object]) -> IDelayedCall:
        """The idle timer (TimeoutMixin's) runs on the broker's clock."""
        return self._clock.callLater(period, func)

    def connectionMade(self) -> None:
        transport: object = self.transport
        assert isinstance(transport, StreamTransport)  # see StreamTransport
        self._stream = transport
        secure = ISSLTransport.providedBy(transport)
        self.transport_name = "tls" if secure else "tcp"  # as STATUS, WHO and the log name it
        self.session = self.broker.open_session(self)
        if self.session is None:
            self.write(FULL.encode())
            self.replies.end()
            return
        self.session.secure = secure
        self.replies.client_id = self.session.id
        if ITCPTransport.providedBy(self.transport):
            self.transport.setTcpNoDelay(True)  # replies are small and awaited: never hold one back (Nagle)
        self.setTimeout(self.broker.config.idle_timeout)
        if not secure:
            self.handshakeCompleted()  # plain TCP has none

    def handshakeCompleted(self) -> None:
        """Become the transport's push producer and greet the client; over TLS once the handshake is done,
        since until then the transport pauses its producer, which would pause reading the handshake too."""
        if self.session is not None and not self.replies.closing:
            self._stream.registerProducer(self, True)
            self._producing = True
            self.write(GREETING)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.setTimeout(None)
        self._producing = False
        self.replies.lost()
        self._drop_input()
        if self.session is not None:
            self.broker.close_session(self.session)

    def readConnectionLost(self) -> None:
        """The client finished sending (``nc -N``): answer what it sent, then close."""
        self.replies.input_ended()

    def writeConnectionLost(self) -> None:
        """The client stopped reading; connectionLost follows."""

    def timeoutConnection(self) -> None:
        """No progress for --idle-timeout: nothing read from the client, nor taken by it."""
        replies = self.replies
        if replies.ended or replies.stalled:  # it does not read: a BYE would not reach it, nor may one cut a payload
            log.info("client {id} stopped reading; disconnecting", id=replies.client_id, category="CONNECTION")
            replies.abort()
        elif replies.pending:
            self.resetTimeout()  # not idle: it waits for a reply of ours (RECV with a wait, a commit)
        else:
            self.close("idle-timeout")

    # -- IClient -------------------------------------------------------------

    def send_event(self, event: Event) -> None:
        self.replies.send_event(event)

    def close(self, reason: str) -> None:
        """Say ``* BYE <reason>`` and close (at once if a payload is being written)."""
        self.replies.bye(reason)

    # -- framing -----------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        self.traffic.received += len(data)
        if self.replies.failed:
            return
        self._progress = False
        self._gathered = []
        try:
            self._frame(data)
        except Exception:
            self.replies.fail(Failure())
            return
        finally:
            self._write_gathered()
            self._gathered = None
        if self._progress:  # a command or literal bytes, not mere line bytes (which could trickle forever)
            self.resetTimeout()

    # -- IPushProducer: the transport's buffer fills and drains ------------

    def pauseProducing(self) -> None:
        """The transport's buffer is full: the pipeline stops writing bodies and reading commands."""
        self.replies.pause_output()

    def resumeProducing(self) -> None:
        """The transport drained: the client reads; the pipeline carries on."""
        self.replies.resume_output()

    def stopProducing(self) -> None:
        """The connection is going away; connectionLost does the cleanup."""

    # -- the pipeline's sink -------------------------------------------------

    def write(self, data: bytes) -> None:
        gathered = self._gathered
        if gathered is None:
            self.traffic.sent += len(data)
            self._stream.write(data)
            return
        gathered.append(data)
        self._gathered_bytes += len(data)
        if self._gathered_bytes >= GATHER_LIMIT:
            self._write_gathered()

    def write_part(self, data: bytes) -> None:
        """A streamed reply's header or body goes out at once, so the transport can pause its producer in time."""
        self._write_gathered()
        self.traffic.sent += len(data)
        self._stream.write(data)

    def _write_gathered(self) -> None:
        """Write the replies gathered so far in this read, in one piece."""
        gathered = self._gathered
        if gathered:
            data = gathered[0] if len(gathered) == 1 else b"".join(gathered)
            gathered.clear()
            self._gathered_bytes = 0
            self.traffic.sent += len(data)
            self._stream.write(data)

    def pause_reading(self) -> None:
        self._reading_paused = True
        cast(IPushProducer, self.transport).pauseProducing()  # every stream transport is its push producer too

    def resume_reading(self) -> None:
        self._reading_paused = False
        cast(IPushProducer, self.transport).resumeProducing()
        if self._gathered is None:  # a read under way carries on by itself
            self.dataReceived(b"")

    def end(self) -> None:
        """Close once what has been written is sent; a paused push producer must not hold the close back."""
        self._write_gathered()
        self._drop_input()
        if self._producing:
            self._producing = False
            self._stream.unregisterProducer()
        self._stream.loseConnection()
        self.resetTimeout()  # the client has --idle-timeout to read the last replies, then it is cut off

    def abort(self) -> None:
        self._write_gathered()  # as if written at once: the transport drops it with the rest
        self._drop_input()
        self._stream.abortConnection()

    def progress(self) -> None:
        self.resetTimeout()

    def log_failure(self, failure: Failure) -> None:
        """A bug in framing or in writing replies: logged once; the half-read input is dropped."""
        log.failure("TCP connection to {peer} failed", failure, peer=self.peer, category="ERROR")
        self._drop_input()


class ConnectionFactory(Factory):
    """Builds a :class:`Connection` per TCP client, all sharing one broker, command table and input budget."""

    noisy = False

    def __init__(
        self, broker: Broker, table: CommandTable, clock: IReactorTime, budget: InputBudget | None = None
    ) -> None:
        self.broker = broker
        self.table = table
        self.clock = clock
        self.budget = budget if budget is not None else InputBudget(broker.config.max_pending_input)
        self.traffic = Traffic()

    def buildProtocol(self, addr: object) -> Connection:
        connection = Connection(self.broker, self.table, self.clock, self.budget, self.traffic)
        connection.factory = self
        return connection
