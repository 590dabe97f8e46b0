# -*- test-case-name: tests.test_queues -*-
"""Receivers waiting for a message (``RECV``/``RESERVE`` with a wait): in line per queue, first come, first served.

The queue system says how to take a message, how to hand it to a receiver and
how to put it back; this module keeps the lines. A take the store answers
later is under way for one queue at a time, so a line's first receiver never
gets two messages.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from msgsvc.domain.errors import Full
from msgsvc.domain.session import Session
from msgsvc.store.answers import Answer
from msgsvc.store.interfaces import Message

log = Logger()

MAX_SESSIONLESS_WAITERS = 256
"""Waiting RECV/RESERVE of one-off requests (a datagram without a session): they hold no client slot."""


@dataclass(eq=False)
class Waiter:
    """A receiver waiting for a message on one queue."""

    session: Session
    queue: str
    reserve: bool
    result: Deferred[Message | None] = field(default_factory=Deferred)
    timer: IDelayedCall | None = None
    done: bool = False
    """Answered, expired, or its client left: it must take nothing more."""


class WaitingReceivers:
    """The receivers waiting on each queue."""

    def __init__(
        self,
        clock: IReactorTime,
        take: Callable[[str, bool], Answer[Message | None]],
        hand_over: Callable[[Message, Session, str, bool], Message | None],
        put_back: Callable[[Message, str, bool], None],
    ) -> None:
        """``take(queue, reserve)`` takes a message from the store; ``hand_over`` and ``put_back`` as the queues'."""
        self._clock = clock
        self._take = take
        self._hand_over = hand_over
        self._put_back = put_back
        self.lines: dict[str, deque[Waiter]] = {}
        """The receivers waiting on each queue that has any, longest waiting first."""
        self.of_session: dict[Session, set[Waiter]] = {}
        self._waking: dict[str, bool] = {}
        """Queues with a take under way for their first receiver; True if it must look again once done."""
        self.sessionless = 0
        """Receivers waiting for one-off requests (bounded by MAX_SESSIONLESS_WAITERS)."""

    def join(self, session: Session, queue: str, wait: float, reserve: bool) -> Deferred[Message | None]:
        """Wait up to ``wait`` seconds for a message: fires with it, or with None when the time is over."""
        if not session.lasting:
            if self.sessionless >= MAX_SESSIONLESS_WAITERS:
                raise Full("too many clients without a session are waiting; try again later")
            self.sessionless += 1
        waiter = Waiter(session, queue, reserve)
        waiter.timer = self._clock.callLater(wait, self._finish, waiter, None)
        self.lines.setdefault(queue, deque()).append(waiter)
        self.of_session.setdefault(session, set()).add(waiter)
        return waiter.result

    def session_closed(self, session: Session) -> None:
        """The client left: its waits end empty-handed."""
        for waiter in list(self.of_session.get(session, ())):
            self._finish(waiter, None)

    def wake(self, queue: str) -> None:
        """Hand ready messages to the receivers waiting on ``queue``, the longest waiting first."""
        waiters = self.lines.get(queue)
        while waiters:
            if queue in self._waking:
                self._waking[queue] = True
                return
            waiter = waiters[0]  # in line, so neither answered nor expired, and its client is here
            message = self._take(queue, waiter.reserve)
            if message is None:
                return
            if not isinstance(message, Message):  # the store answers later
                self._waking[queue] = False
                message.addCallbacks(
                    self._taken, self._failed, callbackArgs=(waiter, queue), errbackArgs=(waiter, queue)
                )
                return
            self._finish(waiter, self._hand_over(message, waiter.session, queue, waiter.reserve))

    def _taken(self, message: Message | None, waiter: Waiter, queue: str) -> None:
        """The store's later answer to a take for the first receiver; then on to the next, if any."""
        again = self._waking.pop(queue)
        if message is not None:
            if waiter.done:  # it expired or left meanwhile
                self._put_back(message, queue, waiter.reserve)
                return
            self._finish(waiter, self._hand_over(message, waiter.session, queue, waiter.reserve))
        if message is not None or again:
            self.wake(queue)

    def _failed(self, failure: Failure, waiter: Waiter, queue: str) -> None:
        """The store failed a take: the receiver it was for gets the failure (logged if it has gone)."""
        self._waking.pop(queue, None)
        if waiter.done:
            log.failure("queue store failed", failure, category="ERROR")
        self._finish(waiter, failure)

    def _finish(self, waiter: Waiter, outcome: Message | Failure | None) -> None:
        if waiter.done:
            return
        waiter.done = True
        if not waiter.session.lasting:
            self.sessionless -= 1
        if waiter.timer is not None and waiter.timer.active():
            waiter.timer.cancel()
        line = self.lines.get(waiter.queue)
        if line is not None and waiter in line:  # expired or left: it leaves the line
            line.remove(waiter)
            if not line:
                del self.lines[waiter.queue]
        others = self.of_session.get(waiter.session)
        if others is not None:
            others.discard(waiter)
            if not others:
                del self.of_session[waiter.session]
        if isinstance(outcome, Failure):
            waiter.result.errback(outcome)
        else:
            waiter.result.callback(outcome)
