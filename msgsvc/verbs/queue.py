# -*- test-case-name: tests.test_queues -*-
"""Queue verbs: SEND, RECV, QUEUES, and reliable delivery: RESERVE, ACK, NACK, QSTAT."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from msgsvc.commands import Arg, CommandSet, Refused, Text
from msgsvc.converters import message_id, queue_name, wait_seconds
from msgsvc.store.interfaces import Message, MessageTooBig
from msgsvc.wire import Data, Ok, listing

if TYPE_CHECKING:
    from msgsvc.broker import Broker
    from msgsvc.session import Session

commands = CommandSet()

QUEUE = Arg("queue", queue_name, optional=True, default="default", prefix="@")
WAIT = Arg("wait", wait_seconds, optional=True, default=0.0, label="wait-seconds")
EMPTY = "Error - no messages in queue."


@commands.verb("SEND", QUEUE, Text("message"), summary="queue a message (the text, or a literal)")
def send(broker: Broker, session: Session, queue: str, message: bytes) -> Deferred:
    limit = broker.config.max_message
    if len(message) > limit:
        raise Refused("too-big", f"message of {len(message)} bytes exceeds the {limit}-byte limit")
    return broker.queues.send(queue, message).addCallback(
        lambda message_id: Ok(f"{message_id} queued {len(message)} bytes")
    )


@commands.verb("RECV", QUEUE, WAIT, summary="take the oldest message, waiting up to wait-seconds for one")
def recv(broker: Broker, session: Session, queue: str, wait: float) -> Deferred:
    received = broker.queues.receive(session, queue, wait, session.client.max_payload)
    return received.addCallbacks(_delivered, _too_big)


@commands.verb("RESERVE", QUEUE, WAIT, summary="hold the oldest message until ACK (at-least-once delivery)")
def reserve(broker: Broker, session: Session, queue: str, wait: float) -> Deferred:
    reserved = broker.queues.reserve(session, queue, wait, session.client.max_payload)
    return reserved.addCallbacks(_delivered, _too_big)


@commands.verb("ACK", Arg("id", message_id), summary="delete a message you reserved")
def ack(broker: Broker, session: Session, id: int) -> Deferred:
    return broker.queues.acknowledge(session, id).addCallback(lambda _: Ok())


@commands.verb(
    "NACK",
    Arg("id", message_id),
    Arg("delay", wait_seconds, optional=True, default=0.0, label="delay-seconds"),
    summary="give a reserved message back: first in line again (after the delay)",
)
def nack(broker: Broker, session: Session, id: int, delay: float) -> Deferred:
    return broker.queues.give_back(session, id, delay).addCallback(lambda _: Ok())


@commands.verb("QSTAT", QUEUE, summary="a queue's figures: ready, reserved, sent, received, acked, ...")
def qstat(broker: Broker, session: Session, queue: str) -> Deferred:
    stats = Deferred.fromCoroutine(broker.queues.stats(queue))
    return stats.addCallback(lambda figures: Data(listing([f"{key} {value}" for key, value in figures.items()]), queue))


def _delivered(message: Message | None) -> Data:
    if message is None:
        raise Refused("empty", EMPTY)
    return Data(message.payload, str(message.id))


def _too_big(failure: Failure) -> Failure:
    failure.trap(MessageTooBig)
    raise Refused("too-big", f"the oldest message ({failure.value.size} bytes) does not fit one datagram; use TCP")


@commands.verb("QUEUES", summary="list non-empty queues with their depth")
def queues(broker: Broker, session: Session) -> Deferred:
    return broker.queues.depths().addCallback(
        lambda depths: Data(listing([f"{name} {depth}" for name, depth in depths]), "queues")
    )
