# -*- test-case-name: tests.test_client,tests.test_client_transfers -*-
"""A msgsvc client over UDP: every command tagged, retried until its reply arrives.

Every request starts ``!<cookie> &<key> %<tag> #<tag>``: the cookie proves the
address, the key (chosen here, at random) binds a logged-in session to this
client, and ``%<tag>`` asks for a reliable transfer whenever the reply or the
literal is larger than one block (docs/protocol.md, "UDP").
"""

from __future__ import annotations

import secrets
from itertools import count

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.error import TimeoutError
from twisted.internet.interfaces import IReactorCore, IReactorTime, IReactorUDP
from twisted.internet.protocol import DatagramProtocol

from msgsvc.client.attempts import Attempt, RetryPacing
from msgsvc.client.replies import Event, ProtocolViolation, Reply, ReplyParser, ServerError
from msgsvc.client.requests import encode_command
from msgsvc.client.tcp import EventHandler
from msgsvc.protocol import transfer
from msgsvc.protocol.reliable import BlockReceiver, BlockSender, BytesReader, TransferFailed
from msgsvc.protocol.transfer import BLOCK, Abort, Ack, Block, Malformed

__all__ = ["TransferFailed", "UdpClient", "connect_udp"]

MAX_PACKET = 65535
"""What one read takes from the socket: Twisted's default (8192) would cut larger replies short."""
COOKIE_REQUEST = b"COOKIE" + b" " * 26
"""Asks the server for this address's cookie, padded so the answer fits what it may send an unproved address."""
FINISHED = 64
"""Finished downloads whose last acknowledgement is repeated if the server missed it."""


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
        self.tag_prefix = "u" + secrets.token_hex(3)
        """Tags unlike those of an earlier client on the same address (a NAT, a reused port): the server's
        retry cache must not answer this client with that one's replies."""
        self._pending: dict[str, Attempt] = {}
        self._finished: dict[bytes, int] = {}
        self.cookie: bytes | None = None
        """Proves to the server that this client receives what is sent to its address (see :meth:`validate`)."""
        self.pacing = RetryPacing(timeout, retries)
        """When a request is sent again: after a few measured round trips, then twice as long each time."""
        self.key = secrets.token_hex(8).encode()
        """Binds a session this client logs in to to this client: a forged datagram cannot act in it."""

    def validate(self) -> Deferred[Reply]:
        """Get this address's cookie (``COOKIE``); later commands carry it as ``!<cookie> ``.

        A server answers more than a few bytes, keeps a session and sends
        events only to addresses that proved this way (or that it trusts).
        """
        attempt = self._attempt("", COOKIE_REQUEST, 0)
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
        """Send a command; ``wait`` is how long the server may legitimately take (RECV's wait).

        A reply or a ``payload`` larger than one block travels as a reliable transfer.
        """
        tag = f"{self.tag_prefix}{next(self._tags)}"
        prefix = b"&" + self.key + b" %" + tag.encode() + b" "
        datagram = prefix + encode_command(verb, *args, payload=payload, tag=tag)
        upload = None
        if payload is not None and len(datagram) > BLOCK:  # the line alone; the literal follows as a transfer
            datagram, upload = datagram[: -len(payload) - 2], payload
        attempt = self._attempt(tag, self._proved(datagram), wait)
        attempt.payload = upload
        self._pending[tag] = attempt
        self._transmit(tag)
        return attempt.result

    def _attempt(self, tag: str, datagram: bytes, wait: float) -> Attempt:
        return self.pacing.attempt(Deferred(lambda _: self._forget(tag)), datagram, wait, self.reactor.seconds())

    def _proved(self, datagram: bytes) -> bytes:
        return datagram if self.cookie is None else b"!" + self.cookie + b" " + datagram

    def _write(self, datagram: bytes) -> None:
        assert self.transport is not None  # listening
        self.transport.write(self._proved(datagram), (self.host, self.port))

    def _forget(self, tag: str) -> None:
        """A command was cancelled: no more retries or blocks, and a late reply is ignored."""
        attempt = self._pending.pop(tag, None)
        if attempt is not None:
            self._quiet(attempt)

    def _quiet(self, attempt: Attempt) -> None:
        if attempt.timer is not None and attempt.timer.active():
            attempt.timer.cancel()
        if attempt.upload is not None:
            attempt.upload.cancel()

    def _transmit(self, tag: str) -> None:
        attempt = self._pending.get(tag)
        if attempt is None:
            return
        now = self.reactor.seconds()
        if now >= attempt.deadline:
            self._fail(tag, TimeoutError(f"no reply from {self.host}:{self.port}"))
            return
        if attempt.first_sent < 0:
            attempt.first_sent = now
        else:
            attempt.resent = True
        attempt.timer = self.reactor.callLater(min(attempt.delay, attempt.deadline - now), self._transmit, tag)
        attempt.delay = min(attempt.delay * 2, attempt.timeout)
        assert self.transport is not None  # listening
        self.transport.write(attempt.datagram, (self.host, self.port))

    def _fail(self, tag: str, reason: Exception) -> None:
        attempt = self._pending.pop(tag, None)
        if attempt is not None:
            self._quiet(attempt)
            attempt.result.errback(reason)

    def datagramReceived(self, datagram: bytes, address: tuple[str, int]) -> None:
        if (address[0], address[1]) != (self.host, self.port):
            return
        if transfer.is_message(datagram):
            try:
                prefixes = transfer.split_prefixes(datagram)
                assert prefixes.transfer is not None  # a transfer message starts with its id
                message = transfer.parse_message(prefixes.transfer, prefixes.rest)
            except Malformed:
                return
            if message is not None:
                self._transfer_message(message)
            return
        self._replies(datagram)

    def _replies(self, data: bytes) -> None:
        try:
            items = ReplyParser().feed(data)
        except ProtocolViolation:
            return
        for item in items:
            if isinstance(item, Event):
                self.on_event(item)
                continue
            attempt = self._pending.pop(item.tag or "", None)
            if attempt is None:
                continue
            self._quiet(attempt)
            if not attempt.resent and attempt.download is None and attempt.upload is None:  # Karn's rule
                self.pacing.measured(self.reactor.seconds() - attempt.first_sent)
            if item.kind == "ERR":
                attempt.result.errback(ServerError(item))
            else:
                attempt.result.callback(item)

    def _transfer_message(self, message: Block | Ack | Abort) -> None:
        tag = message.transfer.decode("ascii")
        attempt = self._pending.get(tag)
        if attempt is None:
            finished = self._finished.get(message.transfer)
            if isinstance(message, Block) and finished is not None:  # the server missed our last ack
                self._write(transfer.ack(message.transfer, finished))
            return
        if isinstance(message, Abort):
            self._fail(tag, TransferFailed(f"the server gave the transfer up: {message.reason}"))
        elif isinstance(message, Ack):
            self._upload_acknowledged(tag, attempt, message.next)
        else:
            self._block(tag, attempt, message)

    def _upload_acknowledged(self, tag: str, attempt: Attempt, next_seq: int) -> None:
        if attempt.payload is None:
            return
        if attempt.upload is None:  # the server is ready: send the literal; the request is not resent meanwhile
            if attempt.timer is not None and attempt.timer.active():
                attempt.timer.cancel()
            attempt.upload = BlockSender(
                self.reactor,
                tag.encode(),
                len(attempt.payload),
                BytesReader(attempt.payload),
                self._write,
                lambda failure: self._uploaded(tag, failure),
            )
            attempt.upload.start()
        attempt.upload.acknowledged(next_seq)

    def _uploaded(self, tag: str, failure: TransferFailed | None) -> None:
        """The literal is up (the reply comes next; the request is sent again if it does not) or the upload failed."""
        attempt = self._pending.get(tag)
        if attempt is None or attempt.result.called:
            return
        if failure is not None:
            self._fail(tag, failure)
            return
        attempt.deadline = self.reactor.seconds() + attempt.timeout * self.retries
        attempt.delay = self.pacing.first_delay(attempt.timeout)
        attempt.timer = self.reactor.callLater(attempt.delay, self._transmit, tag)

    def _block(self, tag: str, attempt: Attempt, block: Block) -> None:
        receiver = attempt.download
        if receiver is None:
            receiver = attempt.download = BlockReceiver(block.transfer, block.total, self._write, attempt.parts.append)
        elif block.total != receiver.total:
            return
        if attempt.timer is not None and attempt.timer.active():  # blocks are coming: the request arrived
            attempt.timer.cancel()
        attempt.timer = self.reactor.callLater(self.timeout * (self.retries + 1) * 4, self._stalled, tag)
        receiver.received(block.seq, block.payload)
        if receiver.complete:
            self._finished[block.transfer] = receiver.next
            while len(self._finished) > FINISHED:
                del self._finished[next(iter(self._finished))]
            content, attempt.parts = b"".join(attempt.parts), []
            self._replies(content)
            if tag in self._pending:  # the content was no reply to it
                self._fail(tag, TransferFailed("the transfer did not hold the reply"))

    def _stalled(self, tag: str) -> None:
        self._fail(tag, TransferFailed(f"the transfer from {self.host}:{self.port} stopped"))

    def close(self) -> Deferred[None]:
        """Stop listening; pending commands fail."""
        self._fail_all(TimeoutError("client closed"))
        return maybeDeferred(self._stop_listening)

    def _stop_listening(self) -> Deferred[None]:
        assert self.transport is not None  # listening
        stopped = self.transport.stopListening()
        return succeed(None) if stopped is None else stopped

    def _fail_all(self, reason: Exception) -> None:
        for tag in list(self._pending):
            self._fail(tag, reason)


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
