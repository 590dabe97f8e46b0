# -*- test-case-name: tests.test_transfer -*-
"""Both ends of a reliable transfer over datagrams, without I/O: the caller sends what they ask.

:class:`BlockSender` keeps at most ``window`` blocks unacknowledged and sends
a new one only when an acknowledgement frees room, so it is ack-clocked: to
an address that acknowledges nothing it sends one window, then one block per
timeout, each timeout twice as long as the last (up to :data:`MAX_RTO`),
and gives up after ``retries`` of them in a row. The timeout follows the
measured round trip (RFC 6298; Karn's rule: no sample from a retransmitted
block). Every third duplicate acknowledgement resends the missing block at once
(fast retransmit; again only after a round trip, in case the resend was lost
too), and an acknowledgement that stops short of what was sent
before it resends the next hole (NewReno's partial acknowledgement).

:class:`BlockReceiver` takes blocks in any order and any number of times,
keeps those up to ``window`` ahead of the first missing one, hands the bytes
over in order, and answers with the cumulative ``A <next>``: for every second
block that arrives in order (as TCP's delayed acknowledgements, halving the
datagrams back), for the last one, and at once for any block out of order or
seen before, so the sender learns of a loss without delay.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from msgsvc.protocol import transfer
from msgsvc.protocol.transfer import BLOCK, block_count, block_size

__all__ = ["BlockReceiver", "BlockSender", "Reader", "TransferFailed"]

WINDOW = 32
"""Blocks in flight (about 38 KB); while duplicates report a gap, up to twice that, as a receiver keeps
two windows ahead of a gap (NewReno's window inflation: the path keeps carrying new blocks during recovery)."""
INITIAL_RTO = 0.5
"""Seconds before the first retransmission, until a round trip has been measured."""
MIN_RTO = 0.01
MAX_RTO = 4.0
RETRIES = 8
"""Timeouts in a row without progress before a sender gives up (about 25 s at most)."""
DUPLICATES = 3


class TransferFailed(Exception):
    """A transfer was given up: the other end stopped acknowledging, or aborted it."""


class Reader(Protocol):
    """Where a sender's bytes come from, in order."""

    def read(self, size: int) -> bytes:
        """Up to ``size`` more bytes; b"" only when exhausted."""

    def close(self) -> None:
        """Release what the reader holds."""


class BytesReader:
    """A :class:`Reader` over bytes in memory."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._offset = 0

    def read(self, size: int) -> bytes:
        chunk = self._view[self._offset : self._offset + size]
        self._offset += len(chunk)
        return bytes(chunk)

    def close(self) -> None:
        self._view.release()


class BlockSender:
    """Sends ``total`` bytes from ``reader`` as blocks to one peer; ``finished`` says how it ended."""

    def __init__(
        self,
        clock: IReactorTime,
        transfer_id: bytes,
        total: int,
        reader: Reader,
        send: Callable[[bytes], object],
        finished: Callable[[TransferFailed | None], object],
        window: int = WINDOW,
        retries: int = RETRIES,
        rto: float = INITIAL_RTO,
    ) -> None:
        self._clock = clock
        self.transfer_id = transfer_id
        self.total = total
        self._reader = reader
        self._send = send
        self._finished = finished
        self._window = window
        self._retries = retries
        self._count = block_count(total)
        self._base = 0
        """The first block not acknowledged."""
        self._next = 0
        """The next block never sent."""
        self._in_flight: deque[tuple[bytes, float]] = deque()
        """Payload and first-send time (-1 once resent) of each block from base to next."""
        self._duplicates = 0
        self._recover = -1
        """While recovering from a loss: the next block at the time it was detected."""
        self._timeouts = 0
        self._resent_at = -1.0
        self._rto = rto
        self._srtt: float | None = None
        self._rttvar = 0.0
        self._timer: IDelayedCall | None = None
        self.done = False

    def start(self) -> None:
        """Send the first window."""
        self._fill()
        self._arm()

    def acknowledged(self, next_seq: int) -> None:
        """The peer has every block before ``next_seq``."""
        if self.done or next_seq > self._next:
            return
        if next_seq <= self._base:
            if next_seq == self._base and self._next > self._base:
                self._duplicates += 1
                if self._duplicates % DUPLICATES == 0 and self._resend_due():
                    self._recover = self._next
                    self._resend()
                self._fill()  # each duplicate is a block that left the path: room for a new one
            return
        fresh = True  # Karn: no sample from an ack that waited for a resent block
        for _ in range(next_seq - self._base):
            _, sent_at = self._in_flight.popleft()
            fresh = fresh and sent_at >= 0
        if fresh:
            self._sample(self._clock.seconds() - sent_at)
        if self._srtt is not None:  # progress ends any backoff (as Linux does)
            self._rto = min(MAX_RTO, max(MIN_RTO, self._srtt + 4 * self._rttvar))
        self._base = next_seq
        self._duplicates = 0
        self._timeouts = 0
        if self._base == self._count:
            self._finish(None)
            return
        if self._base < self._recover:  # a partial ack: the next hole was lost too
            self._resend()
        self._fill()
        self._arm()

    def abort(self, reason: str) -> None:
        """The peer gave the transfer up."""
        if not self.done:
            self._finish(TransferFailed(f"the other end gave the transfer up: {reason}"))

    def cancel(self) -> None:
        """Stop without telling anyone (the peer is gone, or the server stops)."""
        if not self.done:
            self._finish(TransferFailed("cancelled"))

    def _fill(self) -> None:
        now = self._clock.seconds()
        room = self._window + min(self._duplicates, self._window)  # a receiver keeps 2 windows ahead
        while self._next < self._count and self._next - self._base < room:
            payload = self._read(block_size(self._next, self.total))
            self._in_flight.append((payload, now))
            self._send(transfer.block(self.transfer_id, self._next, self.total, payload))
            self._next += 1

    def _read(self, size: int) -> bytes:
        parts = []
        while size > 0:
            part = self._reader.read(size)
            if not part:
                raise ValueError(f"the reader ended {size} bytes short of the announced {self.total}")
            parts.append(part)
            size -= len(part)
        return b"".join(parts)

    def _resend_due(self) -> bool:
        """Whether the missing block may be sent again: once, then again only after a round trip
        without it arriving (its resend was lost too), so duplicates alone never flood the path."""
        return self._clock.seconds() - self._resent_at >= (self._srtt or 0.0)

    def _resend(self) -> None:
        payload, _ = self._in_flight[0]
        self._in_flight[0] = (payload, -1.0)
        self._resent_at = self._clock.seconds()
        self._send(transfer.block(self.transfer_id, self._base, self.total, payload))

    def _sample(self, rtt: float) -> None:
        if self._srtt is None:
            self._srtt, self._rttvar = rtt, rtt / 2
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - rtt)
            self._srtt = 0.875 * self._srtt + 0.125 * rtt

    def _arm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.reset(self._rto)
        else:
            self._timer = self._clock.callLater(self._rto, self._timed_out)

    def _timed_out(self) -> None:
        self._timeouts += 1
        if self._timeouts > self._retries:
            self._finish(TransferFailed(f"no acknowledgement after {self._retries} retransmissions"))
            return
        self._rto = min(MAX_RTO, self._rto * 2)
        self._duplicates = 0
        self._recover = self._next
        self._resend()
        self._timer = self._clock.callLater(self._rto, self._timed_out)

    def _finish(self, failure: TransferFailed | None) -> None:
        self.done = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._in_flight.clear()
        self._reader.close()
        self._finished(failure)


class BlockReceiver:
    """Takes the blocks of one transfer of ``total`` bytes; ``deliver`` gets its bytes in order."""

    def __init__(
        self,
        transfer_id: bytes,
        total: int,
        send: Callable[[bytes], object],
        deliver: Callable[[bytes], object],
        window: int = 2 * WINDOW,
    ) -> None:
        self.transfer_id = transfer_id
        self.total = total
        self._send = send
        self._deliver = deliver
        self._window = window
        self._count = block_count(total)
        self.next = 0
        """The first block not yet delivered."""
        self._ahead: dict[int, bytes] = {}

    @property
    def complete(self) -> bool:
        """Every block has been delivered."""
        return self.next == self._count

    def received(self, seq: int, payload: bytes) -> None:
        """Block ``seq`` arrived (its size already checked against the total): deliver, keep or drop it, and ack."""
        if seq == self.next and not self._ahead:  # in order: every second block is acknowledged
            self._deliver(payload)
            self.next += 1
            if self.next % 2 and not self.complete:
                return
        elif seq == self.next:
            self._deliver(payload)
            self.next += 1
            while self.next in self._ahead:
                self._deliver(self._ahead.pop(self.next))
                self.next += 1
        elif self.next < seq < self.next + self._window:
            self._ahead[seq] = payload
        self.acknowledge()

    def acknowledge(self) -> None:
        """Say again which blocks have arrived."""
        self._send(transfer.ack(self.transfer_id, self.next))

    @property
    def held(self) -> int:
        """Bytes kept out of order (at most ``window`` blocks)."""
        return len(self._ahead) * BLOCK
