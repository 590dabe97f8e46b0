# -*- test-case-name: tests.test_udp,tests.test_udp_sessions,tests.test_udp_keys,tests.test_udp_transfers -*-
"""The UDP front end: one command per datagram, one reply datagram, sessions per address.

A datagram is framed as a whole message, dispatched by the shared command
table and answered on its own: of the reply pipeline it uses only the commit
wait (:func:`~msgsvc.dispatch.pipeline.answer_alone`). The helpers hold what
is particular to UDP: safety for unproved addresses (``udp_safety``),
sessions and their keys (``udp_clients``), and transfers (``udp_transfers``).
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from msgsvc.dispatch.pipeline import answer_alone
from msgsvc.dispatch.table import INTERNAL_ERROR, CommandTable, Plan
from msgsvc.domain.broker import Broker
from msgsvc.protocol.framing import FramingError, literal_too_big, message_literal, split_message
from msgsvc.protocol.transfer import Malformed, parse_message, split_prefixes
from msgsvc.protocol.wire import Data, Err, Reply, Request, StreamedData, host_port
from msgsvc.transports.input_budget import InputBudget
from msgsvc.transports.reply_cache import ReplyCache
from msgsvc.transports.traffic import Traffic
from msgsvc.transports.udp_clients import UdpClient, UdpSessions, too_big
from msgsvc.transports.udp_safety import Safety, is_trusted, needs_validation
from msgsvc.transports.udp_transfers import UdpTransfers

__all__ = ["MAX_DATAGRAM", "DatagramFrontEnd", "UdpClient", "too_big"]

log = Logger()

MAX_DATAGRAM = 65507  # the largest UDP payload over IPv4

Address = tuple


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
    key: bytes | None = None  # the session key the request carried (&<key>)
    transfer: bytes | None = None  # the transfer id it carried (%<id>): a large reply goes as that transfer


class DatagramFrontEnd(DatagramProtocol):
    """Every UDP peer on the port: requests to the shared command table, replies back."""

    noisy = False

    def __init__(
        self, broker: Broker, table: CommandTable, clock: IReactorTime, budget: InputBudget | None = None
    ) -> None:
        """``budget`` bounds the literals coming up in transfers (shared with the TCP listener's)."""
        self.broker = broker
        self.table = table
        self.clock = clock
        self.sessions = UdpSessions(broker, clock, self.send, self.count_drop)
        self._replies = ReplyCache(clock)
        self.safety = Safety(clock)
        """Cookies, budgets and rate limits of the peers outside --udp-trusted."""
        self.dropped = self.safety.dropped
        """Datagrams dropped (not handled, or not answered), by reason: for the metrics."""
        self.traffic = Traffic()
        config = broker.config
        budget = budget if budget is not None else InputBudget(config.max_pending_input)
        self.transfers = UdpTransfers(clock, self.send, budget, config.idle_timeout)

    def datagramReceived(self, datagram: bytes, address: Address) -> None:
        """Answer one datagram; whatever goes wrong, the sender gets one reply (ERR internal for a bug)."""
        self.traffic.received += len(datagram)
        exchange = _Exchange(address)
        try:
            admitted = self._admit(datagram, exchange)
            if admitted is not None:
                self._receive(admitted, exchange)
        except Exception:
            self._failed(Failure(), exchange)

    def _admit(self, datagram: bytes, exchange: _Exchange) -> bytes | None:
        """The request in a datagram (its leading words taken off), or None when it was dropped or answered here."""
        trusted = is_trusted(exchange.address[0], self.broker.config.udp_trusted)
        exchange.validated, request, answer = self.safety.admit(datagram, exchange.address, trusted)
        if answer is not None:
            self._reply(answer, exchange)
        if request is None:
            return None
        try:
            prefixes = split_prefixes(request)
            exchange.key, exchange.transfer = prefixes.key, prefixes.transfer
            message = None if prefixes.transfer is None else parse_message(prefixes.transfer, prefixes.rest)
        except Malformed as error:
            self._reply(Err("bad-args", str(error)).encode(), exchange)
            return None
        if message is None:
            return prefixes.rest
        exchange.replied = True  # a transfer message has no reply of its own
        if exchange.validated:
            self.transfers.received(message, exchange.address)
        else:
            self.count_drop("transfer")
        return None

    def _receive(self, datagram: bytes, exchange: _Exchange) -> None:
        address = exchange.address
        try:
            request, rest = split_message(datagram, self.broker.config.max_line)
            if request is None:
                return
            plan = self.table.prepare(request)
            if exchange.transfer is not None and request.literal_size and not rest:
                self._begin_upload(request, plan, datagram, exchange)
                return
            literal = None
            if rest or request.literal_size is not None:  # more than one plain command line
                limit = 0 if request.literal_size is None else plan.literal_limit(self.broker.config)
                literal = message_literal(request, rest, limit)
        except FramingError as refusal:
            self._refuse(refusal.reply, refusal.tag, exchange)
            return
        exchange.tag = request.tag
        if request.tag is not None:
            if self._replayed(request.tag, exchange):
                return
            exchange.cache_key = (address, request.tag, exchange.validated)  # forged and proved requests apart
            self._replies.begin(exchange.cache_key)
        client, exchange.opened_session, denied = self.sessions.enter(
            address, exchange.validated, exchange.key, plan, request.verb
        )
        exchange.client = client
        if denied is not None:
            self._answer(denied, exchange)
            return
        session = client.session
        assert session is not None  # entered
        if literal is not None:
            sink = plan.literal_sink(self.broker, session)
            if sink is not None:
                sink.write(literal)
                literal = sink.finish()
            request.literal = literal
        result = self.table.dispatch(self.broker, session, request, plan)
        answer_alone(result, self.broker.durability, self._answer, self._failed, exchange)

    def _replayed(self, tag: bytes, exchange: _Exchange) -> bool:
        """Whether the tagged request was seen before: then its saved reply, if it has one yet, goes again."""
        seen, reply = self._replies.lookup((exchange.address, tag, exchange.validated))
        if seen:
            exchange.replied = True
            if reply is not None:
                self._reply(reply, exchange, tag)
        return seen

    def _refuse(self, error: Err, tag: bytes | None, exchange: _Exchange) -> None:
        self.table.refusals.refused(f"udp {host_port(exchange.address)}", error.code, error.text)
        self._reply(error.encode(tag), exchange, tag)

    def _begin_upload(self, request: Request, plan: Plan, datagram: bytes, exchange: _Exchange) -> None:
        """A request whose literal comes up as a transfer: taken block by block, then run like a datagram."""
        assert exchange.transfer is not None and request.literal_size is not None  # checked by the caller
        address, tag = exchange.address, request.tag
        if tag is not None and self._replayed(tag, exchange):  # sent again after it ran
            return
        size, limit = request.literal_size, plan.literal_limit(self.broker.config)
        line = datagram.partition(b"\n")[0]
        refusal = None
        if not exchange.validated:
            refusal = needs_validation(size)
        elif size > limit:
            refusal = literal_too_big(size, limit)
        else:
            ran = _Exchange(address, validated=True, key=exchange.key, transfer=exchange.transfer)
            refusal = self.transfers.begin_upload(
                address, exchange.transfer, size, lambda literal: self._run_uploaded(line + b"\n" + literal, ran)
            )
        if refusal is not None:
            self._refuse(refusal, tag, exchange)
        else:
            exchange.replied = True

    def _run_uploaded(self, datagram: bytes, exchange: _Exchange) -> None:
        """A request whose literal has all come up: run it as if it had come in one datagram."""
        try:
            self._receive(datagram, exchange)
        except Exception:
            self._failed(Failure(), exchange)

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
                self.sessions.end(exchange.address, None)
        except Exception:
            log.failure("cleaning up after a failed datagram", category="ERROR")

    def _answer(self, reply: Reply, exchange: _Exchange) -> None:
        client = exchange.client
        assert client is not None  # set before the command runs
        transfer = exchange.transfer if exchange.validated else None  # a client that asked, at a proved address
        if transfer is not None and self.transfers.reply(reply, exchange.tag, exchange.address, transfer):
            exchange.replied = True
        else:
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
            self.sessions.end(client.address, None)
        else:
            client.bind_key(exchange.key)

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
            self.traffic.sent += len(data)
        except OSError as error:
            log.info("could not send to {address}: {error}", address=address, error=error, category="CONNECTION")

    def stopProtocol(self) -> None:
        self.transfers.stop()
        self.sessions.stop()
