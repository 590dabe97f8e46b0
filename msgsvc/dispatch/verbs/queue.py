# -*- test-case-name: tests.test_queues -*-
"""Queue verbs: SEND, RECV, QUEUES, and reliable delivery: RESERVE, ACK, NACK, QSTAT.

The queue system may answer at once or later (a Deferred); a verb replies at
once when it can, so a message's path builds no Deferred with the memory and
SQLite stores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred

from msgsvc.dispatch.commands import Arg, CommandSet, Text
from msgsvc.domain.errors import Empty, TooBig
from msgsvc.protocol.converters import message_id, queue_name, wait_seconds
from msgsvc.protocol.wire import Data, Ok, listing
from msgsvc.store.answers import Answer, then
from msgsvc.store.interfaces import Message

if TYPE_CHECKING:
    from msgsvc.domain.broker import Broker
    from msgsvc.domain.queues import QueueService
    from msgsvc.domain.session import Session

commands = CommandSet("queue", "FIFO message queues; RESERVE and ACK for at-least-once delivery")

QUEUE = Arg("queue", queue_name, optional=True, default="default", prefix="@", memo=True)
WAIT = Arg("wait", wait_seconds, optional=True, default=0.0, label="wait-seconds", memo=True)
EMPTY = "Error - no messages in queue."


@commands.verb("SEND", QUEUE, Text("message"), summary="queue a message (the text, or a literal)", errors=("too-big",))
def send(broker: Broker, session: Session, queue: str, message: bytes) -> Ok | Deferred[Ok]:
    limit = broker.config.max_message
    if len(message) > limit:
        raise TooBig(f"message of {len(message)} bytes exceeds the {limit}-byte limit")
    sent = broker.queues.send(queue, message)
    if isinstance(sent, int):
        return Ok(f"{sent} queued {len(message)} bytes")
    return sent.addCallback(lambda message_id: Ok(f"{message_id} queued {len(message)} bytes"))


@commands.verb(
    "RECV",
    QUEUE,
    WAIT,
    summary="take the oldest message, waiting up to wait-seconds for one",
    errors=("empty", "too-big", "full"),
)
def recv(broker: Broker, session: Session, queue: str, wait: float) -> Data | Deferred[Data]:
    service = broker.queues
    taken = service.receive(session, queue, wait)
    if taken is None or isinstance(taken, Message):  # as in _take, without the call: every message's path
        return _delivered(taken, service, queue, False)
    return taken.addCallback(_delivered, service, queue, False)


@commands.verb(
    "RESERVE",
    QUEUE,
    WAIT,
    summary="hold the oldest message until ACK (at-least-once delivery)",
    errors=("empty", "too-big", "full"),
)
def reserve(broker: Broker, session: Session, queue: str, wait: float) -> Data | Deferred[Data]:
    return _take(broker.queues, session, queue, wait, reserve=True)


def _take(service: QueueService, session: Session, queue: str, wait: float, reserve: bool) -> Data | Deferred[Data]:
    """RECV or RESERVE: the message now, or a Deferred once one arrives or the wait is over."""
    take = service.reserve if reserve else service.receive
    taken = take(session, queue, wait)
    if taken is None or isinstance(taken, Message):  # (cheaper than asking whether it is a Deferred, an ABC)
        return _delivered(taken, service, queue, reserve)
    return taken.addCallback(_delivered, service, queue, reserve)


@commands.verb("ACK", Arg("id", message_id), summary="delete a message you reserved", errors=("no-msg",))
def ack(broker: Broker, session: Session, id: int) -> Ok | Deferred[Ok]:
    return _ok(broker.queues.acknowledge(session, id))


@commands.verb(
    "NACK",
    Arg("id", message_id),
    Arg("delay", wait_seconds, optional=True, default=0.0, label="delay-seconds"),
    summary="give a reserved message back: first in line again (after the delay)",
    errors=("no-msg",),
)
def nack(broker: Broker, session: Session, id: int, delay: float) -> Ok | Deferred[Ok]:
    return _ok(broker.queues.nack(session, id, delay))


@commands.verb("QSTAT", QUEUE, summary="a queue's figures: ready, reserved, sent, received, acked, ...", errors=())
def qstat(broker: Broker, session: Session, queue: str) -> Data | Deferred[Data]:
    return then(broker.queues.stats(queue), _figures, queue)


@commands.verb("QUEUES", summary="list non-empty queues with their depth", errors=())
def queues(broker: Broker, session: Session) -> Data | Deferred[Data]:
    return then(broker.queues.depths(), _depths)


def _delivered(message: Message | None, service: QueueService, queue: str, reserved: bool) -> Data:
    """The message as a DATA reply; a front end that cannot deliver it gives it back (once)."""
    if message is None:
        raise Empty(EMPTY)
    return Data(message.payload, str(message.id), _GiveBack(service, queue, message, reserved))


class _GiveBack:
    """A reply's ``undelivered``: the message goes back to its queue, the first time only."""

    __slots__ = ("message", "queue", "reserved", "service")

    def __init__(self, service: QueueService, queue: str, message: Message, reserved: bool) -> None:
        self.service: QueueService | None = service
        self.queue = queue
        self.message = message
        self.reserved = reserved

    def __call__(self) -> None:
        service, self.service = self.service, None
        if service is not None:
            service.give_back(self.queue, self.message, self.reserved)


def _ok(done: Answer[None]) -> Ok | Deferred[Ok]:
    return Ok() if done is None else done.addCallback(lambda _: Ok())


def _figures(figures: dict[str, int], queue: str) -> Data:
    return Data(listing([f"{key} {value}" for key, value in figures.items()]), queue)


def _depths(depths: list[tuple[str, int]]) -> Data:
    return Data(listing([f"{name} {depth}" for name, depth in depths]), "queues")
