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

    Called on every command's path, so a success only bumps one integer in a
    dict keyed by verb; the verbs are the table's own (unknown ones are one
    ``unknown``), so the number of series stays bounded.
    """

    def __init__(self) -> None:
        self.ok: dict[str, int] = {}
        """Commands answered OK or DATA, by verb."""
        self.errors: dict[tuple[str, str], int] = {}
        """Commands answered ERR, by verb and code."""

    def dispatched(self, verb: str, reply: Reply) -> None:
        if type(reply) is Err:
            key = (verb, reply.code)
            self.errors[key] = self.errors.get(key, 0) + 1
        else:
            self.ok[verb] = self.ok.get(verb, 0) + 1

    def by_result(self) -> list[tuple[str, str, int]]:
        """(verb, result, count) for every verb and result seen, sorted."""
        return sorted(
            [*((verb, "ok", n) for verb, n in self.ok.items()), *((v, c, n) for (v, c), n in self.errors.items())]
        )

    def total(self, errors_only: bool = False) -> int:
        """Commands answered (only those answered ERR with ``errors_only``)."""
        return sum(self.errors.values()) + (0 if errors_only else sum(self.ok.values()))


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
