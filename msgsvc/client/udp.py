# -*- test-case-name: tests.test_client -*-
"""A msgsvc client over UDP: every command tagged, retried until its reply arrives."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.error import TimeoutError
from twisted.internet.interfaces import IDelayedCall, IReactorCore, IReactorTime, IReactorUDP
from twisted.internet.protocol import DatagramProtocol

from msgsvc.client.replies import Event, ProtocolViolation, Reply, ReplyParser, ServerError
from msgsvc.client.requests import encode_command
from msgsvc.client.tcp import EventHandler

MAX_DATAGRAM = 65507
MAX_PACKET = 65535
COOKIE_REQUEST = b"COOKIE" + b" " * 26
"""Asks the server for this address's cookie, padded so the answer fits what it may send an unproved address."""
"""What one read takes from the socket: Twisted's default (8192) would cut larger replies short."""


@dataclass
class _Attempt:
    result: Deferred[Reply]
    datagram: bytes
    timeout: float
    tries_left: int
    timer: IDelayedCall | None = None


class UdpClient(DatagramProtocol):
    """Talks to one server address; the server's reply cache makes the retries safe.

    The socket is not connected: Twisted's epoll reactor closes a connected UDP
    port when an ICMP "port unreachable" arrives, so an absent server shows as
    a timeout after the retries.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        host: str,
        port: int,
        on_event: EventHandler | None = None,
        timeout: float = 1.0,
        retries: int = 3,
    ) -> None:
        self.reactor = reactor
        self.host = host
        self.port = port
        self.on_event = on_event or (lambda event: None)
        self.timeout = timeout
        self.retries = retries
        self._tags = count(1)
        self._pending: dict[str, _Attempt] = {}
        self.cookie: bytes | None = None
        """Proves to the server that this client receives what is sent to its address (see :meth:`validate`)."""

    def validate(self) -> Deferred[Reply]:
        """Get this address's cookie (``COOKIE``); later commands carry it as ``!<cookie> ``.

        A server answers more than a few bytes, keeps a session and sends
        events only to addresses that proved this way (or that it trusts).
        """
        attempt = _Attempt(Deferred(lambda _: self._forget("")), COOKIE_REQUEST, self.timeout, self.retries + 1)
        self._pending[""] = attempt  # the answer is the one reply without a tag
        self._transmit("")
        return attempt.result.addCallback(self._validated)

    def _validated(self, reply: Reply) -> Reply:
        word, _, cookie = reply.text.partition(" ")
        if word != "cookie" or not cookie:
            raise ServerError(Reply("ERR", f"unexpected answer to COOKIE: {reply.text}", "internal"))
        self.cookie = cookie.encode("ascii")
        return reply

    def command(self, verb: str, *args: str, payload: bytes | None = None, wait: float = 0) -> Deferred[Reply]:
        """Send a command; ``wait`` is how long the server may legitimately take (RECV's wait)."""
        tag = f"u{next(self._tags)}"
        datagram = encode_command(verb, *args, payload=payload, tag=tag)
        if self.cookie is not None:
            datagram = b"!" + self.cookie + b" " + datagram
        if len(datagram) > MAX_DATAGRAM:
            return fail(ValueError(f"a {len(datagram)}-byte command does not fit one datagram; use TCP"))
        attempt = _Attempt(Deferred(lambda _: self._forget(tag)), datagram, self.timeout + wait, self.retries + 1)
        self._pending[tag] = attempt
        self._transmit(tag)
        return attempt.result

    def _forget(self, tag: str) -> None:
        """A command was cancelled: no more retries, and a late reply is ignored."""
        attempt = self._pending.pop(tag, None)
        if attempt is not None and attempt.timer is not None and attempt.timer.active():
            attempt.timer.cancel()

    def _transmit(self, tag: str) -> None:
        attempt = self._pending.get(tag)
        if attempt is None:
            return
        if attempt.tries_left == 0:
            del self._pending[tag]
            attempt.result.errback(TimeoutError(f"no reply from {self.host}:{self.port}"))
            return
        attempt.tries_left -= 1
        attempt.timer = self.reactor.callLater(attempt.timeout, self._transmit, tag)
        assert self.transport is not None  # listening
        self.transport.write(attempt.datagram, (self.host, self.port))

    def datagramReceived(self, datagram: bytes, address: tuple[str, int]) -> None:
        if (address[0], address[1]) != (self.host, self.port):
            return
        try:
            items = ReplyParser().feed(datagram)
        except ProtocolViolation:
            return
        for item in items:
            if isinstance(item, Event):
                self.on_event(item)
                continue
            attempt = self._pending.pop(item.tag or "", None)
            if attempt is None:
                continue
            assert attempt.timer is not None  # a pending attempt has been sent
            attempt.timer.cancel()
            if item.kind == "ERR":
                attempt.result.errback(ServerError(item))
            else:
                attempt.result.callback(item)

    def close(self) -> Deferred[None]:
        """Stop listening; pending commands fail."""
        self._fail_all(TimeoutError("client closed"))
        return maybeDeferred(self._stop_listening)

    def _stop_listening(self) -> Deferred[None]:
        assert self.transport is not None  # listening
        stopped = self.transport.stopListening()
        return succeed(None) if stopped is None else stopped

    def _fail_all(self, reason: Exception) -> None:
        pending, self._pending = self._pending, {}
        for attempt in pending.values():
            assert attempt.timer is not None  # a pending attempt has been sent
            if attempt.timer.active():
                attempt.timer.cancel()
            attempt.result.errback(reason)


def connect_udp(
    reactor: IReactorTime,
    host: str,
    port: int,
    on_event: EventHandler | None = None,
    timeout: float = 1.0,
    retries: int = 3,
) -> Deferred[UdpClient]:
    """Resolve ``host``, open a UDP socket aimed at the server and get its cookie (fails if there is no answer)."""

    async def connect() -> UdpClient:
        address = await IReactorCore(reactor).resolve(host)
        client = UdpClient(reactor, address, port, on_event, timeout, retries)
        IReactorUDP(reactor).listenUDP(0, client, interface="::" if ":" in address else "", maxPacketSize=MAX_PACKET)
        try:
            await client.validate()
        except BaseException:
            await client.close()
            raise
        return client

    return Deferred.fromCoroutine(connect())
