# -*- test-case-name: tests.test_udp -*-
"""The UDP front end: one command per datagram, one reply datagram, sessions per address.

A datagram is framed as a whole message (:mod:`msgsvc.protocol.framing`),
prepared and dispatched by the shared command table, and answered on its own:
it has no order to keep among other replies, so of the reply pipeline it uses
only the commit wait (:func:`msgsvc.dispatch.pipeline.answer_alone`). What is
particular to UDP stays here: the size of a datagram, and the hint to use TCP
for a reply that does not fit one.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from msgsvc.dispatch.pipeline import answer_alone
from msgsvc.dispatch.table import INTERNAL_ERROR, CommandTable
from msgsvc.domain.broker import Broker
from msgsvc.domain.events import Bye, Event
from msgsvc.domain.interfaces import IClient
from msgsvc.domain.session import Session
from msgsvc.protocol.events import encode_event
from msgsvc.protocol.framing import FramingError, message_literal, split_message
from msgsvc.protocol.wire import FULL, Data, Err, Reply, StreamedData, host_port

log = Logger()

MAX_DATAGRAM = 65507
"""Largest UDP payload over IPv4."""
REPLY_CACHE_SECONDS = 60.0
REPLY_CACHE_BYTES = 16 << 20
CACHE_ENTRY_OVERHEAD = 256
"""Bytes an entry costs besides its reply (key, tuple, dict slot), counted against REPLY_CACHE_BYTES."""

Address = tuple


def too_big(size: int) -> Err:
    """The answer to a request whose reply does not fit one datagram."""
    return Err("too-big", f"a {size}-byte reply does not fit one datagram; use TCP")


@implementer(IClient)
class UdpClient:
    """A UDP peer as the broker sees it: events and replies go back as datagrams."""

    transport_name = "udp"

    def __init__(self, front_end: DatagramFrontEnd, address: Address) -> None:
        self.front_end = front_end
        self.address = address
        self.peer = (address[0], address[1])
        self.session: Session | None = None
        self.idle_timer: IDelayedCall | None = None

    def send_event(self, event: Event) -> None:
        self.front_end.send(encode_event(event), self.address)

    def close(self, reason: str) -> None:
        self.front_end.end_session(self.address, reason)


class ReplyCache:
    """Replies to tagged requests by (address, tag), so a retried datagram is answered, not re-run."""

    def __init__(self, clock: IReactorTime, seconds: float = REPLY_CACHE_SECONDS, max_bytes: int = REPLY_CACHE_BYTES):
        self._clock = clock
        self._seconds = seconds
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[tuple, tuple[float, bytes | None]] = OrderedDict()

    def lookup(self, key: tuple) -> tuple[bool, bytes | None]:
        """(seen, reply): reply is None while the first request is still running."""
        self._expire()
        entry = self._entries.get(key)
        return (False, None) if entry is None else (True, entry[1])

    def begin(self, key: tuple) -> None:
        """A tagged request starts running."""
        self._entries[key] = (self._clock.seconds(), None)

    def store(self, key: tuple, reply: bytes) -> None:
        """Its reply, to send again to a retry."""
        entry = self._entries.get(key)
        if entry is None:
            return
        self._entries[key] = (entry[0], reply)
        self._bytes += len(reply) + CACHE_ENTRY_OVERHEAD
        while self._bytes > self._max_bytes:
            self._drop_oldest()

    def _expire(self) -> None:
        deadline = self._clock.seconds() - self._seconds
        while self._entries and next(iter(self._entries.values()))[0] <= deadline:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, (_, reply) = self._entries.popitem(last=False)
        if reply is not None:
            self._bytes -= len(reply) + CACHE_ENTRY_OVERHEAD


@dataclass(slots=True)
class _Exchange:
    """One datagram and its reply: where the reply goes once the command completes."""

    address: Address
    tag: bytes | None = None
    cache_key: tuple | None = None
    client: UdpClient | None = None
    opened_session: bool = False
    replied: bool = False
    """The reply datagram has been sent: a failure after that sends no second one."""


class DatagramFrontEnd(DatagramProtocol):
    """Every UDP peer on the port: requests to the shared command table, replies back."""

    noisy = False

    def __init__(self, broker: Broker, table: CommandTable, clock: IReactorTime) -> None:
        self.broker = broker
        self.table = table
        self.clock = clock
        self._sessions: dict[Address, UdpClient] = {}
        self._replies = ReplyCache(clock)

    def datagramReceived(self, datagram: bytes, address: Address) -> None:
        """Answer one datagram; whatever goes wrong, the sender gets one reply (ERR internal for a bug)."""
        exchange = _Exchange(address)
        try:
            self._receive(datagram, exchange)
        except Exception:
            self._failed(Failure(), exchange)

    def _receive(self, datagram: bytes, exchange: _Exchange) -> None:
        address = exchange.address
        try:
            request, rest = split_message(datagram, self.broker.config.max_line)
            if request is None:
                return
            plan = self.table.prepare(request)
            literal = None
            if rest or request.literal_size is not None:  # more than one plain command line
                limit = 0 if request.literal_size is None else plan.literal_limit(self.broker.config)
                literal = message_literal(request, rest, limit)
        except FramingError as refusal:
            error = refusal.reply
            self.table.refusals.refused(f"udp {host_port(address)}", error.code, error.text)
            exchange.replied = True
            self.send(error.encode(refusal.tag), address)
            return
        exchange.tag = request.tag
        if request.tag is not None:
            cache_key = (address, request.tag)
            seen, reply = self._replies.lookup(cache_key)
            if seen:
                exchange.replied = True
                if reply is not None:
                    self.send(reply, address)
                return
            self._replies.begin(cache_key)
            exchange.cache_key = cache_key
        client = self._sessions.get(address)
        if client is not None:
            assert client.session is not None and client.idle_timer is not None  # a kept client has both
            session = client.session
            client.idle_timer.reset(self.broker.config.idle_timeout)
        else:
            client = UdpClient(self, address)
            if plan.remembers_client:
                opened = client.session = self.broker.open_session(client)
                if opened is None:
                    exchange.client = client
                    self._answer(FULL, exchange)
                    return
                session = opened
                self._sessions[address] = client
                client.idle_timer = self.clock.callLater(
                    self.broker.config.idle_timeout, self.end_session, address, "idle-timeout"
                )
                exchange.opened_session = True
            else:
                session = client.session = self.broker.one_off_session(client)
        exchange.client = client
        if literal is not None:
            sink = plan.literal_sink(self.broker, session)
            if sink is not None:
                sink.write(literal)
                literal = sink.finish()
            request.literal = literal
        result = self.table.dispatch(self.broker, session, request, plan)
        answer_alone(result, self.broker.durability, self._answer, self._failed, exchange)

    def _failed(self, failure: Failure, exchange: _Exchange) -> None:
        """A bug while handling a datagram: logged once; the sender gets ERR internal unless it got its reply."""
        log.failure("datagram from {peer} failed", failure, peer=host_port(exchange.address), category="ERROR")
        client = exchange.client
        replied = exchange.replied
        if not replied:
            exchange.replied = True
            data = INTERNAL_ERROR.encode(exchange.tag)
            self.send(data, exchange.address)
            if exchange.cache_key is not None:
                self._replies.store(exchange.cache_key, data)
        if client is None or client.session is None or not client.session.open:
            return
        try:  # leave no transient session, nor a session opened by the failed command, behind
            if not client.session.lasting:
                self.broker.close_session(client.session)
            elif exchange.opened_session and not replied:
                self.end_session(exchange.address, None)
        except Exception:
            log.failure("cleaning up after a failed datagram", category="ERROR")

    def _answer(self, reply: Reply, exchange: _Exchange) -> None:
        client = exchange.client
        assert client is not None  # set before the command runs
        data = self._encode(reply, exchange.tag)
        exchange.replied = True
        self.send(data, client.address)
        if exchange.cache_key is not None:
            self._replies.store(exchange.cache_key, data)
        if client.session is None:
            return
        if not client.session.lasting:
            self.broker.close_session(client.session)
        elif reply.closes or (exchange.opened_session and isinstance(reply, Err)):
            self.end_session(client.address, None)

    @staticmethod
    def _encode(reply: Reply, tag: bytes | None) -> bytes:
        """The reply's datagram; ERR too-big instead when it does not fit one (what it took is given back)."""
        if isinstance(reply, StreamedData) and reply.size > MAX_DATAGRAM:
            reply.source.close()
            return too_big(reply.size).encode(tag)
        data = reply.encode(tag)
        if len(data) > MAX_DATAGRAM:
            if isinstance(reply, Data) and reply.undelivered is not None:
                reply.undelivered()  # e.g. the message goes back to the head of its queue
            data = too_big(len(data)).encode(tag)
        return data

    def send(self, data: bytes, address: Address) -> None:
        """Send one datagram; a peer that cannot be reached is not the server's problem."""
        assert self.transport is not None  # listening
        try:
            self.transport.write(data, address)
        except OSError as error:
            log.info("could not send to {address}: {error}", address=address, error=error, category="CONNECTION")

    def end_session(self, address: Address, bye: str | None) -> None:
        """End the UDP session of ``address``, saying ``* BYE <bye>`` first if given."""
        client = self._sessions.pop(address, None)
        if client is None:
            return
        assert client.session is not None and client.idle_timer is not None  # a kept client has both
        if client.idle_timer.active():
            client.idle_timer.cancel()
        if bye is not None:
            self.send(encode_event(Bye(bye)), address)
        self.broker.close_session(client.session)

    def stopProtocol(self) -> None:
        for address in list(self._sessions):
            self.end_session(address, None)
