# -*- test-case-name: tests.test_udp_transfers -*-
"""The UDP front end's reliable transfers: replies sent down, and literals taken up, in blocks.

Everything here is bounded: at most :data:`PER_ADDRESS` transfers each way per
address and :data:`TOTAL` in all; a download holds one window of blocks (and
its source), an upload holds its bytes, charged to the server-wide input
budget before the first block is accepted. An upload that gets no block for
``--idle-timeout`` seconds is dropped and its bytes released; a download whose
peer stops acknowledging ends after the sender's retries, and what the reply
took (a received message) is given back.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from msgsvc.protocol import transfer
from msgsvc.protocol.reliable import BlockReceiver, BlockSender, BytesReader, Reader, TransferFailed
from msgsvc.protocol.transfer import BLOCK, Abort, Ack, Block
from msgsvc.protocol.wire import CRLF, BodySource, Data, Err, Reply, StreamedData, host_port
from msgsvc.transports.input_budget import InputBudget

__all__ = ["PER_ADDRESS", "TOTAL", "ChainReader", "UdpTransfers"]

log = Logger()

PER_ADDRESS = 8
"""Transfers each way one address may have going at once."""
TOTAL = 256
"""Transfers each way all addresses together may have going at once."""
REMEMBERED = 1024
"""Finished uploads whose last acknowledgement is repeated to a peer that missed it."""

Address = tuple
Key = tuple[Address, bytes]

BUSY = Err("full", "too many transfers in progress; try again later")
OVER_BUDGET = Err("too-big", "the server holds too much unfinished input right now; try again later")


class ChainReader:
    """A reply streamed from a source: its header line, the source's bytes, then CRLF."""

    def __init__(self, header: bytes, source: BodySource, trailer: bytes) -> None:
        self._parts: list[bytes | BodySource] = [header, source, trailer]
        self._source = source

    def read(self, size: int) -> bytes:
        while self._parts:
            part = self._parts[0]
            if isinstance(part, bytes):
                chunk, rest = part[:size], part[size:]
                if rest:
                    self._parts[0] = rest
                else:
                    self._parts.pop(0)
                return chunk
            chunk = part.read(size)
            if chunk:
                return chunk
            self._parts.pop(0)
        return b""

    def close(self) -> None:
        self._source.close()


class _Upload:
    """A literal coming up: its receiver, its bytes so far, and the timer that drops it when idle."""

    def __init__(
        self, receiver: BlockReceiver, parts: list[bytes], complete: Callable[[bytes], object], timer: IDelayedCall
    ) -> None:
        self.receiver = receiver
        self.parts = parts
        self.complete = complete
        self.timer = timer


class UdpTransfers:
    """Every transfer of one UDP front end, keyed by (address, transfer id)."""

    def __init__(
        self, clock: IReactorTime, send: Callable[[bytes, Address], object], budget: InputBudget, idle_timeout: float
    ) -> None:
        self._clock = clock
        self._send = send
        self.budget = budget
        self._idle_timeout = idle_timeout
        self.downloads: dict[Key, BlockSender] = {}
        self.uploads: dict[Key, _Upload] = {}
        self._finished: OrderedDict[Key, int] = OrderedDict()
        self._per_address: dict[tuple[Address, bool], int] = {}

    def _room(self, address: Address, upload: bool) -> bool:
        table = self.uploads if upload else self.downloads
        return len(table) < TOTAL and self._per_address.get((address, upload), 0) < PER_ADDRESS

    def _count(self, address: Address, upload: bool, change: int) -> None:
        key = (address, upload)
        left = self._per_address.get(key, 0) + change
        if left:
            self._per_address[key] = left
        else:
            self._per_address.pop(key, None)

    def download(
        self, address: Address, transfer_id: bytes, total: int, reader: Reader, undelivered: Callable[[], object] | None
    ) -> bool:
        """Send ``total`` bytes from ``reader`` to ``address`` as ``transfer_id``; False when there is no room."""
        key = (address, transfer_id)
        if key in self.downloads or not self._room(address, upload=False):
            return False

        def finished(failure: TransferFailed | None) -> None:
            del self.downloads[key]
            self._count(address, False, -1)
            if failure is not None:
                log.info(
                    "transfer to {peer} failed: {why}", peer=host_port(address), why=failure, category="CONNECTION"
                )
                if undelivered is not None:
                    undelivered()

        sender = BlockSender(self._clock, transfer_id, total, reader, lambda data: self._send(data, address), finished)
        self.downloads[key] = sender
        self._count(address, False, 1)
        sender.start()
        return True

    def reply(self, reply: Reply, tag: bytes | None, address: Address, transfer_id: bytes) -> bool:
        """Send ``reply`` as transfer ``transfer_id`` if it is over one block (True), or leave it (False).

        With no room for another transfer the client gets ERR full, and what the reply took is given back.
        """
        undelivered = None
        if isinstance(reply, StreamedData):
            header = reply.header(tag)
            total = len(header) + reply.size + len(CRLF)
            if total <= BLOCK:
                return False
            reader: Reader = ChainReader(header, reply.source, CRLF)
        else:
            data = reply.encode(tag)
            if len(data) <= BLOCK:
                return False
            reader, total = BytesReader(data), len(data)
            undelivered = reply.undelivered if isinstance(reply, Data) else None
        if not self.download(address, transfer_id, total, reader, undelivered):
            reader.close()
            if undelivered is not None:
                undelivered()
            self._send(BUSY.encode(tag), address)
        return True

    def begin_upload(
        self, address: Address, transfer_id: bytes, total: int, complete: Callable[[bytes], object]
    ) -> Err | None:
        """Take a literal of ``total`` bytes from ``address`` as transfer ``transfer_id``; an ERR when it cannot."""
        key = (address, transfer_id)
        upload = self.uploads.get(key)
        if upload is not None:  # the request was sent again: say where we are
            upload.receiver.acknowledge()
            return None
        if not self._room(address, upload=True):
            return BUSY
        if not self.budget.charge(total):
            return OVER_BUDGET
        self._finished.pop(key, None)
        timer = self._clock.callLater(self._idle_timeout, self._expire, key)
        parts: list[bytes] = []
        receiver = BlockReceiver(transfer_id, total, lambda data: self._send(data, address), parts.append)
        self.uploads[key] = _Upload(receiver, parts, complete, timer)
        self._count(address, True, 1)
        receiver.acknowledge()  # A 0: ready for block 0
        return None

    def received(self, message: Block | Ack | Abort, address: Address) -> None:
        """A transfer message from ``address``."""
        key = (address, message.transfer)
        if isinstance(message, Block):
            self._block(key, message)
        elif isinstance(message, Ack):
            sender = self.downloads.get(key)
            if sender is not None:
                sender.acknowledged(message.next)
        else:
            sender = self.downloads.get(key)
            if sender is not None:
                sender.abort(message.reason)
            upload = self.uploads.get(key)
            if upload is not None:
                self._drop(key, upload)

    def _block(self, key: Key, block: Block) -> None:
        upload = self.uploads.get(key)
        if upload is None:
            finished = self._finished.get(key)
            if finished is not None:  # our last ack was lost
                self._send(transfer.ack(block.transfer, finished), key[0])
            else:
                self._send(transfer.abort(block.transfer, "no such transfer"), key[0])
            return
        if block.total != upload.receiver.total:
            self._send(transfer.abort(block.transfer, "the total does not match the request's literal"), key[0])
            self._drop(key, upload)
            return
        upload.timer.reset(self._idle_timeout)
        upload.receiver.received(block.seq, block.payload)
        if upload.receiver.complete:
            literal = b"".join(upload.parts)
            self._drop(key, upload)
            self._finished[key] = upload.receiver.next
            while len(self._finished) > REMEMBERED:
                self._finished.popitem(last=False)
            upload.complete(literal)

    def _drop(self, key: Key, upload: _Upload) -> None:
        del self.uploads[key]
        self._count(key[0], True, -1)
        if upload.timer.active():
            upload.timer.cancel()
        self.budget.release(upload.receiver.total)
        upload.parts.clear()

    def _expire(self, key: Key) -> None:
        upload = self.uploads.get(key)
        if upload is not None:
            log.info("upload from {peer} timed out", peer=host_port(key[0]), category="CONNECTION")
            self._drop(key, upload)

    def stop(self) -> None:
        """The front end stops: every transfer ends, releasing what it holds."""
        for sender in list(self.downloads.values()):
            sender.cancel()
        for key, upload in list(self.uploads.items()):
            self._drop(key, upload)
