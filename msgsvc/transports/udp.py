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
from msgsvc.transports.reply_cache import ReplyCache
from msgsvc.transports.udp_safety import HINT, Safety, is_trusted, needs_validation

__all__ = ["MAX_DATAGRAM", "DatagramFrontEnd", "UdpClient", "too_big"]

log = Logger()

MAX_DATAGRAM = 65507
"""Largest UDP payload over IPv4."""

Address = tuple


def too_big(size: int) -> Err:
    """The answer to a request whose reply does not fit one datagram."""
    return Err("too-big", f"a {size}-byte reply does not fit one datagram; use TCP")


def needs_cookie(verb: str) -> Err:
    """The refusal of a session verb from an unvalidated address: forged datagrams take no slot."""
    return Err("bad-args", f"{verb} needs a validated address: {HINT}")


@implementer(IClient)
class UdpClient:
    """A UDP peer as the broker sees it: events and replies go back as datagrams."""

    transport_name = "udp"

    def __init__(self, front_end: DatagramFrontEnd, address: Address, validated: bool = True) -> None:
        self.front_end = front_end
        self.address = address
        self.validated = validated
        """Trusted, or proved by a cookie: only then may events go to it."""
        self.peer = (address[0], address[1])
        self.session: Session | None = None
        self.idle_timer: IDelayedCall | None = None

    def send_event(self, event: Event) -> None:
        if self.validated:
            self.front_end.send(encode_event(event), self.address)
        else:
            self.front_end.count_drop("event")

    def close(self, reason: str) -> None:
        self.front_end.end_session(self.address, reason)


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
    validated: bool = True
    """From a trusted address or with a valid cookie: no budget, events and sessions allowed."""


class DatagramFrontEnd(DatagramProtocol):
    """Every UDP peer on the port: requests to the shared command table, replies back."""

    noisy = False

    def __init__(self, broker: Broker, table: CommandTable, clock: IReactorTime) -> None:
        self.broker = broker
        self.table = table
        self.clock = clock
        self._sessions: dict[Address, UdpClient] = {}
        self._replies = ReplyCache(clock)
        self.safety = Safety(clock)
        """Cookies, budgets and rate limits of the peers outside --udp-trusted."""
        self.dropped = self.safety.dropped
        """Datagrams dropped (not handled, or not answered), by reason: for the metrics."""

    def datagramReceived(self, datagram: bytes, address: Address) -> None:
        """Answer one datagram; whatever goes wrong, the sender gets one reply (ERR internal for a bug)."""
        exchange = _Exchange(address)
        try:
            admitted = self._admit(datagram, exchange)
            if admitted is not None:
                self._receive(admitted, exchange)
        except Exception:
            self._failed(Failure(), exchange)

    def _admit(self, datagram: bytes, exchange: _Exchange) -> bytes | None:
        """The request in a datagram (its cookie taken off), or None when it was dropped or answered here."""
        trusted = is_trusted(exchange.address[0], self.broker.config.udp_trusted)
        exchange.validated, request, answer = self.safety.admit(datagram, exchange.address, trusted)
        if answer is not None:
            self._reply(answer, exchange)
        return request

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
            self._reply(error.encode(refusal.tag), exchange, refusal.tag)
            return
        exchange.tag = request.tag
        if request.tag is not None:
            cache_key = (address, request.tag, exchange.validated)  # forged and proved requests apart
            seen, reply = self._replies.lookup(cache_key)
            if seen:
                exchange.replied = True
                if reply is not None:
                    self._reply(reply, exchange, request.tag)
                return
            self._replies.begin(cache_key)
            exchange.cache_key = cache_key
        client = self._sessions.get(address) if exchange.validated else None  # forged: not its session
        if client is not None:
            assert client.session is not None and client.idle_timer is not None  # a kept client has both
            session = client.session
            client.idle_timer.reset(self.broker.config.idle_timeout)
        else:
            client = UdpClient(self, address, exchange.validated)
            if plan.remembers_client and not exchange.validated:  # forged datagrams take no slot
                exchange.client = client
                self._answer(needs_cookie(request.verb), exchange)
                return
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
            self.send(data, exchange.address, exchange.validated)
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
        data = self._encode(reply, exchange)
        exchange.replied = True
        if data is None:
            self.count_drop("budget")
        else:
            self.send(data, client.address, exchange.validated)
            if exchange.cache_key is not None:
                self._replies.store(exchange.cache_key, data)
        if client.session is None:
            return
        if not client.session.lasting:
            self.broker.close_session(client.session)
        elif reply.closes or (exchange.opened_session and isinstance(reply, Err)):
            self.end_session(client.address, None)

    def _encode(self, reply: Reply, exchange: _Exchange) -> bytes | None:
        """The reply's datagram, or a short ERR instead when it does not fit one or the address's budget.

        What the reply took is given back then; None when not even the ERR fits the budget.
        """
        limit = MAX_DATAGRAM
        if not exchange.validated:
            limit = min(limit, self.safety.budgets.remaining(exchange.address))
        if isinstance(reply, StreamedData) and reply.size > limit:
            reply.source.close()
            size = reply.size
        else:
            data = reply.encode(exchange.tag)
            if len(data) <= limit:
                return data
            if isinstance(reply, Data) and reply.undelivered is not None:
                reply.undelivered()  # e.g. the message goes back to the head of its queue
            size = len(data)
        refusal = needs_validation(size) if not exchange.validated else too_big(size)
        return self._fit(refusal.encode(exchange.tag), exchange, exchange.tag)

    def _fit(self, data: bytes, exchange: _Exchange, tag: bytes | None) -> bytes | None:
        """``data``, if the address may be sent it; else the ERR it is (or the budget hint), cut to fit, or None."""
        return data if exchange.validated else self.safety.fit(data, exchange.address, tag)

    def _reply(self, data: bytes, exchange: _Exchange, tag: bytes | None = None) -> None:
        """Answer here (not through the table): within the budget of an unvalidated address."""
        exchange.replied = True
        fitted = self._fit(data, exchange, tag)
        if fitted is None:
            self.count_drop("budget")
        else:
            self.send(fitted, exchange.address, exchange.validated)

    def count_drop(self, reason: str) -> None:
        """One datagram dropped, or not answered, for ``reason``."""
        self.safety.count_drop(reason)

    def send(self, data: bytes, address: Address, validated: bool = True) -> None:
        """Send one datagram; a peer that cannot be reached is not the server's problem.

        To an unvalidated address only within its budget and the global egress cap (else counted, not sent).
        """
        assert self.transport is not None  # listening
        if not (validated or self.safety.may_send(len(data), address)):
            return
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
