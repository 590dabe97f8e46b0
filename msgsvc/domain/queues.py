# -*- test-case-name: tests.test_queues -*-
"""The message queue system: FIFO delivery, waiting receivers, and reservations.

``RECV`` removes a message: exactly one receiver gets it. ``RESERVE`` hides it
until ``ACK`` deletes it; a reservation that ends otherwise (``NACK``, TTR
over, its holder leaves) puts it back at the head of its queue, or into
``<queue>.dead`` once reserved ``max_deliveries`` times. A message taken for
a reply that could not be delivered is given back as if never taken. The
store may answer at once or later (:mod:`msgsvc.store.answers`); an answer
given at once is used at once (no Deferred on the memory and SQLite stores).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from msgsvc.domain.errors import NoMessage
from msgsvc.domain.queue_waiters import MAX_SESSIONLESS_WAITERS as MAX_SESSIONLESS_WAITERS
from msgsvc.domain.queue_waiters import WaitingReceivers
from msgsvc.domain.session import Session
from msgsvc.store.answers import Answer, then
from msgsvc.store.interfaces import IQueueStore, Message, QueueStats

log = Logger()

DEAD_SUFFIX = ".dead"
MAX_COUNTED_QUEUES = 10_000
"""Queues whose counters QSTAT remembers; the least recently used are forgotten beyond that."""

Taken = Message | None | Deferred[Message | None]
"""What a take returns: at once when the store answers at once and nobody must wait, else a Deferred."""


def dead_letter_queue(queue: str) -> str:
    """Where messages of ``queue`` go after too many deliveries (a dead-letter queue keeps its own)."""
    return queue if queue.endswith(DEAD_SUFFIX) else queue + DEAD_SUFFIX


def holder_of(session: Session) -> object:
    """Who holds a reservation: the client, or for a one-off request its address on its front end."""
    return session if session.lasting else (session.transport_name, session.peer)


def _in_background(answer: Answer[None]) -> None:
    """A change no client waits for: a store failure is logged."""
    if answer is not None:
        answer.addErrback(lambda failure: log.failure("queue store failed", failure, category="ERROR"))


def _with_dead_letters(dead: QueueStats | None, figures: dict[str, int]) -> dict[str, int]:
    if dead is not None:
        figures["dead"] = dead.ready + dead.delayed
    return figures


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
    dead: int = 0
    """Messages moved to the dead letters after too many deliveries."""


class QueueService:
    """Named FIFO queues over a store; receivers may wait, served in arrival order."""

    def __init__(self, store: IQueueStore, clock: IReactorTime, ttr: float = 60.0, max_deliveries: int = 5) -> None:
        self._store = store
        self._clock = clock
        self._ttr = ttr
        self._max_deliveries = max_deliveries
        self.receivers = WaitingReceivers(clock, self._fetch, self._hand_over, self._put_back)
        """The receivers waiting for a message, by queue and by client."""
        self._waiting = self.receivers.lines
        """The queues receivers wait on (SEND looks here before waking anyone)."""
        self._reservations: dict[int, _Reservation] = {}
        self._reserved_by: dict[object, set[int]] = {}
        self._counters: OrderedDict[str, Counters] = OrderedDict()
        self.totals = Counters()
        """Every queue's counters together (never forgotten, never decreasing: the metrics' counters)."""
        self.announce: Callable[[str], None] | None = None  # told each queue sent to, if other nodes share the store

    # -- sending and taking --------------------------------------------------

    def send(self, queue: str, payload: bytes) -> Answer[int]:
        """Store a message and hand it to the longest waiter, if one waits; answers its id."""
        message_id = self._store.enqueue(queue, payload, self._clock.seconds())
        if not isinstance(message_id, int):
            return message_id.addCallback(self._sent, queue)
        self.counters(queue).sent += 1  # as _sent does, without a call: this is every message's path
        self.totals.sent += 1
        if queue in self._waiting:
            self.receivers.wake(queue)
        if self.announce is not None:
            self.announce(queue)
        return message_id

    def _sent(self, message_id: int, queue: str) -> int:
        self.counters(queue).sent += 1
        self.totals.sent += 1
        if queue in self._waiting:
            self.receivers.wake(queue)
        if self.announce is not None:
            self.announce(queue)
        return message_id

    def receive(self, session: Session, queue: str, wait: float) -> Taken:
        """Remove the oldest ready message; if there is none, wait up to ``wait`` seconds for one.

        Answers the message, or None when there is none and ``wait`` is 0 (or
        when nothing arrived in time): at once, or through a Deferred.
        """
        return self._take(session, queue, wait, False)

    def reserve(self, session: Session, queue: str, wait: float) -> Taken:
        """As :meth:`receive`, but the message stays stored, hidden, until acknowledged."""
        return self._take(session, queue, wait, True)

    def _take(self, session: Session, queue: str, wait: float, reserve: bool) -> Taken:
        now = self._clock.seconds()
        message = self._store.reserve(queue, now) if reserve else self._store.dequeue(queue, now)
        if message is None:
            return self.receivers.join(session, queue, wait, reserve) if wait > 0 and session.open else None
        if isinstance(message, Message):
            return self._hand_over(message, session, queue, reserve)
        return message.addCallback(self._fetched, session, queue, wait, reserve)

    def _fetched(self, message: Message | None, session: Session, queue: str, wait: float, reserve: bool) -> Taken:
        """A take the store answered later."""
        if message is not None:
            return self._hand_over(message, session, queue, reserve)
        if wait <= 0 or not session.open:
            return None
        waiting = self.receivers.join(session, queue, wait, reserve)
        self.receivers.wake(queue)  # a message sent while the store answered found nobody waiting yet
        return waiting

    def _fetch(self, queue: str, reserve: bool) -> Answer[Message | None]:
        if reserve:
            return self._store.reserve(queue, self._clock.seconds())
        return self._store.dequeue(queue, self._clock.seconds())

    def _hand_over(self, message: Message, session: Session, queue: str, reserve: bool) -> Message | None:
        """Give a taken message to its receiver, or put it back if the receiver has gone."""
        if not session.open:
            self._put_back(message, queue, reserve)
            return None
        if reserve:
            self._hold(message, queue, holder_of(session))
        self.counters(queue).received += 1
        self.totals.received += 1
        return message

    def give_back(self, queue: str, message: Message, reserved: bool) -> None:
        """A message whose reply could not be delivered is first in line again, as if never taken.

        A reserved one's reservation ends (unless it has ended already), and
        is not counted as a delivery; a receiver waiting on the queue gets it.
        """
        if reserved:
            reservation = self._reservations.get(message.id)
            if reservation is None or reservation.message is not message:
                return
            self._forget(reservation)
        counters = self.counters(queue)
        counters.received = max(0, counters.received - 1)
        self._put_back(message, queue, reserved)

    def _put_back(self, message: Message, queue: str, reserved: bool) -> None:
        """Undo a take: the message is first in line again, and receivers waiting on its queue are served."""
        answer = self._store.unreserve(message.id) if reserved else self._store.give_back(queue, message)
        _in_background(self._then_wake(answer, queue))

    def _then_wake(self, answer: Answer[None], queue: str) -> Answer[None]:
        """Serve the receivers waiting on ``queue`` once the store has made its change."""
        if answer is None:
            self.receivers.wake(queue)
            return None
        return answer.addCallback(lambda _: self.receivers.wake(queue))

    # -- reservations ------------------------------------------------------

    def _hold(self, message: Message, queue: str, holder: object) -> None:
        timer = self._clock.callLater(self._ttr, self._expire, message.id)
        self._reservations[message.id] = _Reservation(message, queue, holder, timer)
        self._reserved_by.setdefault(holder, set()).add(message.id)

    def acknowledge(self, session: Session, message_id: int) -> Answer[None]:
        """Delete a message this client has reserved (NoMessage otherwise); answers once the store has."""
        reservation = self._reservation_of(session, message_id)
        self._forget(reservation)
        self.counters(reservation.queue).acked += 1
        self.totals.acked += 1
        return self._store.acknowledge(message_id)

    def nack(self, session: Session, message_id: int, delay: float) -> Answer[None]:
        """The reserved message is ready again at the head of its queue after ``delay`` seconds."""
        self._reservation_of(session, message_id)
        return self._end_reservation(message_id, delay)

    def _reservation_of(self, session: Session, message_id: int) -> _Reservation:
        reservation = self._reservations.get(message_id)
        if reservation is None or reservation.holder != holder_of(session):
            raise NoMessage(f"you hold no reservation of message {message_id}")
        return reservation

    def _expire(self, message_id: int) -> None:
        _in_background(self._end_reservation(message_id, 0.0))

    def _end_reservation(self, message_id: int, delay: float) -> Answer[None]:
        """A reservation ends without ACK: back to the head of the queue, or to the dead letters."""
        reservation = self._reservations[message_id]
        self._forget(reservation)
        queue = reservation.queue
        if reservation.message.deliveries >= self._max_deliveries:
            self.counters(queue).dead += 1
            self.totals.dead += 1
            queue = dead_letter_queue(queue)
            return self._then_wake(self._store.move(message_id, queue, self._clock.seconds()), queue)
        self.counters(queue).redelivered += 1
        self.totals.redelivered += 1
        released = self._store.release(message_id, self._clock.seconds() + delay)
        if delay <= 0:
            return self._then_wake(released, queue)
        self._clock.callLater(delay, self.receivers.wake, queue)
        return released

    def _forget(self, reservation: _Reservation) -> None:
        del self._reservations[reservation.message.id]
        if reservation.timer.active():
            reservation.timer.cancel()
        held = self._reserved_by[reservation.holder]
        held.discard(reservation.message.id)
        if not held:
            del self._reserved_by[reservation.holder]

    # -- reporting ---------------------------------------------------------

    def depths(self) -> Answer[list[tuple[str, int]]]:
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

    def stats(self, queue: str) -> Answer[dict[str, int]]:
        """QSTAT's figures for one queue, with the counters as they are when the store answers."""
        now = self._clock.seconds()
        dead = dead_letter_queue(queue)
        dead_stats = None if dead == queue else self._store.stats(dead, now)
        return then(self._store.stats(queue, now), self._figures, dead_stats, queue, now)

    def _figures(
        self, stats: QueueStats, dead: Answer[QueueStats | None], queue: str, now: float
    ) -> Answer[dict[str, int]]:
        if stats.counters is None:
            counters = self._counters.get(queue) or Counters()
        else:  # a store shared by several processes counts for all of them
            counters = Counters(**stats.counters)
        age = 0 if (oldest := stats.oldest_enqueued_at) is None else max(0, round((now - oldest) * 1000))
        figures = {"ready": stats.ready, "reserved": stats.reserved, "sent": counters.sent}
        figures |= {"received": counters.received, "acked": counters.acked, "redelivered": counters.redelivered}
        figures |= {"dead": 0, "oldest-age-ms": age, "delayed": stats.delayed}
        return then(dead, _with_dead_letters, figures)

    # -- clients leaving ---------------------------------------------------

    def session_closed(self, session: Session) -> None:
        """A client left: its waiting takes end empty-handed; its reservations are released."""
        self.receivers.session_closed(session)
        if session.lasting:
            # newest first, so that the oldest ends up first in line
            for message_id in sorted(self._reserved_by.get(session, ()), reverse=True):
                _in_background(self._end_reservation(message_id, delay=0.0))
