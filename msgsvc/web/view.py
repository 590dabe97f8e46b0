# -*- test-case-name: tests.test_web_status,tests.test_metrics -*-
"""What the web pages read of a running server, gathered in one place, and the counting of commands."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from msgsvc.domain.broker import Broker
from msgsvc.protocol.wire import Err, Reply
from msgsvc.store.answers import Answer
from msgsvc.transports.traffic import Traffic

TRANSPORTS = ("tcp", "udp", "ws")
"""The front ends, always listed (at zero when absent) so that a dashboard's series exist from the start."""


class CommandCounts:
    """Commands answered, by verb and result (``ok`` or the ERR code): the command table's observer.

    Called on every command's path, so it only bumps an integer in a dict of
    dicts; the verbs are the table's own (unknown ones are one ``unknown``),
    so the number of series stays bounded.
    """

    def __init__(self) -> None:
        self.by_verb: dict[str, dict[str, int]] = {}

    def dispatched(self, verb: str, reply: Reply) -> None:
        result = reply.code if type(reply) is Err else "ok"
        results = self.by_verb.get(verb)
        if results is None:
            results = self.by_verb[verb] = {}
        results[result] = results.get(result, 0) + 1

    def total(self, errors_only: bool = False) -> int:
        """Commands answered (only those answered ERR with ``errors_only``)."""
        return sum(n for results in self.by_verb.values() for r, n in results.items() if not errors_only or r != "ok")


@dataclass
class ServerView:
    """One server's state as the status page and the metrics show it."""

    broker: Broker
    clock: IReactorTime
    commands: CommandCounts = field(default_factory=CommandCounts)
    traffic: dict[str, Traffic] = field(default_factory=dict)
    """Bytes carried, by front end (``tcp``, ``ws``)."""
    udp_dropped: dict[str, int] | None = None
    """The UDP front end's datagrams dropped by the safety rules, by reason (its own dict, read live)."""
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock.seconds()

    @property
    def uptime(self) -> float:
        """Seconds since the server started."""
        return self.clock.seconds() - self.started

    def clients_by_transport(self) -> dict[str, int]:
        """Connected clients, by front end (every one in TRANSPORTS listed)."""
        counts = Counter(session.transport_name for session in self.broker.sessions)
        return {name: counts.get(name, 0) for name in sorted({*TRANSPORTS, *counts})}


def ready(answer: Answer[list[tuple[str, int]]]) -> list[tuple[str, int]] | None:
    """A store's answer if it is there now (a value, or a Deferred that has fired with one), else None."""
    if not isinstance(answer, Deferred):
        return answer
    value: list[tuple[str, int]] | None = None

    def keep(result: list[tuple[str, int]]) -> list[tuple[str, int]]:
        nonlocal value
        value = result
        return result

    answer.addCallback(keep).addErrback(lambda _: None)
    return value
