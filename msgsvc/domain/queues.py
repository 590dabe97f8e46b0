# -*- test-case-name: tests.test_queues -*-
"""The message queue system: FIFO delivery, waiting receivers, and reservations.

``RECV`` removes a message: exactly one receiver gets it. ``RESERVE`` hides it
until ``ACK`` deletes it; a reservation that ends otherwise (``NACK``, its time
to run is over, its holder leaves) puts the message back at the head of its
queue, or into ``<queue>.dead`` once it has been reserved ``max_deliveries`` times.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from msgsvc.domain.errors import Refused
from msgsvc.domain.session import Session
from msgsvc.store.interfaces import IQueueStore, Message, MessageTooBig

DEAD_SUFFIX = ".dead"
MAX_SESSIONLESS_WAITERS = 256
"""Waiting RECV/RESERVE datagrams from addresses without a UDP session (they hold no client slot)."""
MAX_COUNTED_QUEUES = 10_000
"""Queues whose counters QSTAT remembers; the least recently used are forgotten beyond that."""

Taken = Message | None | Deferred[Message | None]
"""What a take returns: at once when a message is ready or nobody waits, else a Deferred."""


def dead_letter_queue(queue: str) -> str:
    """Where messages of ``queue`` go after too many deliveries (a dead-letter queue keeps its own)."""
    return queue if queue.endswith(DEAD_SUFFIX) else queue + DEAD_SUFFIX


def holder_of(session: Session) -> object:
    """Who holds a reservation: the client, or for a lone datagram its address."""
    return session if session.lasting else ("udp", session.peer)


@dataclass(eq=False)
class _Waiter:
    """A receiver waiting for a message on one queue."""

    session: Session
    queue: str
    max_bytes: int | None
    reserve: bool
    result: Deferred[Message | None] = field(default_factory=Deferred)
    timer: IDelayedCall | None = None
    done: bool = False
    """Answered, expired, or its client left: it must take nothing more."""


@dataclass(eq=False)
class _Reservation:
    message: Message
    queue: str
    holder: object
    timer: IDelayedCall


@dataclass
class Counters:
    """What happened to one queue since the server started."""

    sent: int = 0
    received: int = 0
    acked: int = 0
    redelivered: int = 0


class QueueService:
    """Named FIFO queues over a store; receivers may wait, served in arrival order."""

    def __init__(self, store: IQueueStore, clock: IReactorTime, ttr: float = 60.0, max_deliveries: int = 5) -> None:
        self._store = store
        self._clock = clock
        self._ttr = ttr
        self._max_deliveries = max_deliveries
        self._waiting: dict[str, deque[_Waiter]] = {}
        self._waiters_of: dict[Session, set[_Waiter]] = {}
        self._reservations: dict[int, _Reservation] = {}
        self._reserved_by: dict[object, set[int]] = {}
        self._counters: OrderedDict[str, Counters] = OrderedDict()
        self._sessionless_waiters = 0

    # -- sending and taking --------------------------------------------------

    def send(self, queue: str, payload: bytes) -> int:
        """Store a message and hand it to the longest waiter, if one waits; returns its id."""
        message_id = self._store.enqueue(queue, payload, self._clock.seconds())
        self.counters(queue).sent += 1
        if queue in self._waiting:
            self._wake(queue)
        return message_id

    def receive(self, session: Session, queue: str, wait: float, max_bytes: int | None) -> Taken:
        """Remove the oldest ready message; if there is none, wait up to ``wait`` seconds for one.

        Returns the message, or None when there is none and ``wait`` is 0, or
        else a Deferred that fires with the message or with None when nothing
        arrived in time. Raises (or the Deferred fails with) MessageTooBig,
        removing nothing, when the oldest message exceeds ``max_bytes``.
        """
        return self._take(session, queue, wait, max_bytes, reserve=False)

    def reserve(self, session: Session, queue: str, wait: float, max_bytes: int | None) -> Taken:
        """As :meth:`receive`, but the message stays stored, hidden, until acknowledged."""
        return self._take(session, queue, wait, max_bytes, reserve=True)

    def _take(self, session: Session, queue: str, wait: float, max_bytes: int | None, reserve: bool) -> Taken:
        message = self._fetch(queue, max_bytes, reserve)
        if message is not None:
            return self._hand_over(message, session, queue, reserve)
        if wait <= 0 or not session.open:
            return None
        if not session.lasting:
            if self._sessionless_waiters >= MAX_SESSIONLESS_WAITERS:
                raise Refused("full", "too many clients without a session are waiting; try again later")
            self._sessionless_waiters += 1
        waiter = _Waiter(session, queue, max_bytes, reserve)
        waiter.timer = self._clock.callLater(wait, self._finish, waiter, None)
        self._waiting.setdefault(queue, deque()).append(waiter)
        self._waiters_of.setdefault(session, set()).add(waiter)
        return waiter.result

    def _fetch(self, queue: str, max_bytes: int | None, reserve: bool) -> Message | None:
        take = self._store.reserve if reserve else self._store.dequeue
        return take(queue, max_bytes, self._clock.seconds())

    def _hand_over(self, message: Message, session: Session, queue: str, reserve: bool) -> Message | None:
        """Give a taken message to its receiver, or put it back if the receiver has gone."""
        if not session.open:
            self._put_back(message, queue, reserve)
            return None
        if reserve:
            self._hold(message, queue, holder_of(session))
        self.counters(queue).received += 1
        return message

    def _put_back(self, message: Message, queue: str, reserve: bool) -> None:
        """Undo a take whose receiver is gone: the message is first in line again."""
        if reserve:
            self._store.release(message.id, self._clock.seconds())
        else:
            self._store.restore(queue, message)
        self._wake(queue)

    # -- reservations ------------------------------------------------------

    def _hold(self, message: Message, queue: str, holder: object) -> None:
        timer = self._clock.callLater(self._ttr, self._end_reservation, message.id, 0.0)
        self._reservations[message.id] = _Reservation(message, queue, holder, timer)
        self._reserved_by.setdefault(holder, set()).add(message.id)

    def acknowledge(self, session: Session, message_id: int) -> None:
        """Delete a message this client has reserved; Refused("no-msg") otherwise."""
        reservation = self._reservation_of(session, message_id)
        self._forget(reservation)
        self.counters(reservation.queue).acked += 1
        self._store.acknowledge(message_id)

    def give_back(self, session: Session, message_id: int, delay: float) -> None:
        """NACK: the reserved message is ready again at the head of its queue after ``delay`` seconds."""
        self._reservation_of(session, message_id)
        self._end_reservation(message_id, delay)

    def _reservation_of(self, session: Session, message_id: int) -> _Reservation:
        reservation = self._reservations.get(message_id)
        if reservation is None or reservation.holder != holder_of(session):
            raise Refused("no-msg", f"you hold no reservation of message {message_id}")
        return reservation

    def _end_reservation(self, message_id: int, delay: float) -> None:
        """A reservation ends without ACK: back to the head of the queue, or to the dead letters."""
        reservation = self._reservations[message_id]
        self._forget(reservation)
        queue = reservation.queue
        if reservation.message.deliveries >= self._max_deliveries:
            dead = dead_letter_queue(queue)
            self._store.move(message_id, dead, self._clock.seconds())
            self._wake(dead)
            return
        self.counters(queue).redelivered += 1
        self._store.release(message_id, self._clock.seconds() + delay)
        if delay > 0:
            self._clock.callLater(delay, self._wake, queue)
        else:
            self._wake(queue)

    def _forget(self, reservation: _Reservation) -> None:
        del self._reservations[reservation.message.id]
        if reservation.timer.active():
            reservation.timer.cancel()
        held = self._reserved_by[reservation.holder]
        held.discard(reservation.message.id)
        if not held:
            del self._reserved_by[reservation.holder]

    # -- reporting ---------------------------------------------------------

    def depths(self) -> list[tuple[str, int]]:
        """Every queue with ready or delayed messages, and how many."""
        return self._store.depths()

    def counters(self, queue: str) -> Counters:
        """The queue's counters since start (kept for the most recently used queues)."""
        counters = self._counters.get(queue)
        if counters is None:
            counters = self._counters[queue] = Counters()
            if len(self._counters) > MAX_COUNTED_QUEUES:
                self._counters.popitem(last=False)
        else:
            self._counters.move_to_end(queue)
        return counters

    def stats(self, queue: str) -> dict[str, int]:
        """QSTAT's figures for one queue."""
        now = self._clock.seconds()
        stats = self._store.stats(queue, now)
        dead = self._store.stats(dead_letter_queue(queue), now)
        counters = self._counters.get(queue) or Counters()
        oldest = stats.oldest_enqueued_at
        return {
            "ready": stats.ready,
            "reserved": stats.reserved,
            "sent": counters.sent,
            "received": counters.received,
            "acked": counters.acked,
            "redelivered": counters.redelivered,
            "dead": 0 if dead_letter_queue(queue) == queue else dead.ready + dead.delayed,
            "oldest-age-ms": 0 if oldest is None else max(0, round((now - oldest) * 1000)),
            "delayed": stats.delayed,
        }

    # -- clients leaving ---------------------------------------------------

    def session_closed(self, session: Session) -> None:
        """A client left: its waiting takes end empty-handed; its reservations are released."""
        for waiter in list(self._waiters_of.get(session, ())):
            self._finish(waiter, None)
        if session.lasting:
            # newest first, so that the oldest ends up first in line
            for message_id in sorted(self._reserved_by.get(session, ()), reverse=True):
                self._end_reservation(message_id, delay=0.0)

    # -- waiting receivers -------------------------------------------------

    def _wake(self, queue: str) -> None:
        """Hand ready messages to the receivers waiting on ``queue``, the longest waiting first."""
        waiters = self._waiting.get(queue)
        while waiters:
            waiter = waiters[0]  # in line, so neither answered nor expired, and its client is here
            try:
                message = self._fetch(queue, waiter.max_bytes, waiter.reserve)
            except MessageTooBig:
                self._finish(waiter, Failure())
                continue
            if message is None:
                return
            self._finish(waiter, self._hand_over(message, waiter.session, queue, waiter.reserve))

    def _finish(self, waiter: _Waiter, outcome: Message | Failure | None) -> None:
        if waiter.done:
            return
        waiter.done = True
        if not waiter.session.lasting:
            self._sessionless_waiters -= 1
        if waiter.timer is not None and waiter.timer.active():
            waiter.timer.cancel()
        line = self._waiting.get(waiter.queue)
        if line is not None and waiter in line:  # expired or left: it leaves the line
            line.remove(waiter)
            if not line:
                del self._waiting[waiter.queue]
        others = self._waiters_of.get(waiter.session)
        if others is not None:
            others.discard(waiter)
            if not others:
                del self._waiters_of[waiter.session]
        if isinstance(outcome, Failure):
            waiter.result.errback(outcome)
        else:
            waiter.result.callback(outcome)
