# -*- test-case-name: tests.test_queues -*-
"""Queue verbs: SEND, RECV, QUEUES, and reliable delivery: RESERVE, ACK, NACK, QSTAT."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from msgsvc.dispatch.commands import Arg, CommandSet, Text
from msgsvc.domain.errors import Refused
from msgsvc.protocol.converters import message_id, queue_name, wait_seconds
from msgsvc.protocol.wire import Data, Ok, listing
from msgsvc.store.interfaces import Message, MessageTooBig

if TYPE_CHECKING:
    from msgsvc.domain.broker import Broker
    from msgsvc.domain.queues import Taken
    from msgsvc.domain.session import Session

commands = CommandSet("queue", "FIFO message queues; RESERVE and ACK for at-least-once delivery")

QUEUE = Arg("queue", queue_name, optional=True, default="default", prefix="@")
WAIT = Arg("wait", wait_seconds, optional=True, default=0.0, label="wait-seconds")
EMPTY = "Error - no messages in queue."


@commands.verb("SEND", QUEUE, Text("message"), summary="queue a message (the text, or a literal)", errors=("too-big",))
def send(broker: Broker, session: Session, queue: str, message: bytes) -> Ok:
    limit = broker.config.max_message
    if len(message) > limit:
        raise Refused("too-big", f"message of {len(message)} bytes exceeds the {limit}-byte limit")
    return Ok(f"{broker.queues.send(queue, message)} queued {len(message)} bytes")


@commands.verb(
    "RECV",
    QUEUE,
    WAIT,
    summary="take the oldest message, waiting up to wait-seconds for one",
    errors=("empty", "too-big", "full"),
)
def recv(broker: Broker, session: Session, queue: str, wait: float) -> Data | Deferred[Data]:
    return _deliver(broker.queues.receive, session, queue, wait)


@commands.verb(
    "RESERVE",
    QUEUE,
    WAIT,
    summary="hold the oldest message until ACK (at-least-once delivery)",
    errors=("empty", "too-big", "full"),
)
def reserve(broker: Broker, session: Session, queue: str, wait: float) -> Data | Deferred[Data]:
    return _deliver(broker.queues.reserve, session, queue, wait)


@commands.verb("ACK", Arg("id", message_id), summary="delete a message you reserved", errors=("no-msg",))
def ack(broker: Broker, session: Session, id: int) -> Ok:
    broker.queues.acknowledge(session, id)
    return Ok()


@commands.verb(
    "NACK",
    Arg("id", message_id),
    Arg("delay", wait_seconds, optional=True, default=0.0, label="delay-seconds"),
    summary="give a reserved message back: first in line again (after the delay)",
    errors=("no-msg",),
)
def nack(broker: Broker, session: Session, id: int, delay: float) -> Ok:
    broker.queues.give_back(session, id, delay)
    return Ok()


@commands.verb("QSTAT", QUEUE, summary="a queue's figures: ready, reserved, sent, received, acked, ...", errors=())
def qstat(broker: Broker, session: Session, queue: str) -> Data:
    figures = broker.queues.stats(queue)
    return Data(listing([f"{key} {value}" for key, value in figures.items()]), queue)


@commands.verb("QUEUES", summary="list non-empty queues with their depth", errors=())
def queues(broker: Broker, session: Session) -> Data:
    return Data(listing([f"{name} {depth}" for name, depth in broker.queues.depths()]), "queues")


def _deliver(take: Callable[..., Taken], session: Session, queue: str, wait: float) -> Data | Deferred[Data]:
    """Take a message for the client: the reply now, or once a message arrives or the wait is over."""
    try:
        taken = take(session, queue, wait, session.client.max_payload)
    except MessageTooBig as error:
        raise _too_big(error) from None
    if taken is None or isinstance(taken, Message):  # (cheaper than asking whether it is a Deferred, an ABC)
        return _delivered(taken)
    return taken.addCallbacks(_delivered, _too_big_failure)


def _delivered(message: Message | None) -> Data:
    if message is None:
        raise Refused("empty", EMPTY)
    return Data(message.payload, str(message.id))


def _too_big(error: MessageTooBig) -> Refused:
    return Refused("too-big", f"the oldest message ({error.size} bytes) does not fit one datagram; use TCP")


def _too_big_failure(failure: Failure) -> Failure:
    failure.trap(MessageTooBig)
    raise _too_big(failure.value)
