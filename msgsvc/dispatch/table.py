# -*- test-case-name: tests.test_commands -*-
"""The command table: joins the verb sets, dispatches every request, turns every failure into ``ERR``.

Both transports (and any later one) dispatch through the same table, which
binds a request's arguments to the handler's parameters, maps the domain's
errors to replies, and says whether a reply must wait for the commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from msgsvc.dispatch import help
from msgsvc.dispatch.commands import Arg, Command, CommandSet, LiteralSink
from msgsvc.dispatch.errors import reply_for
from msgsvc.dispatch.refusals import RefusalLog
from msgsvc.domain.errors import DomainError, Refused
from msgsvc.protocol.wire import Err, Reply, Request, host_port

if TYPE_CHECKING:
    from msgsvc.config import Config
    from msgsvc.domain.broker import Broker
    from msgsvc.domain.session import Session

log = Logger()

INTERNAL_ERROR = Err("internal", "internal error; it has been logged")
"""The reply to a command that failed unexpectedly, or whose changes could not be committed."""


@dataclass(slots=True)
class Unconfirmed:
    """A reply that must wait until the changes made so far are durable (``broker.durability``).

    The front end keeps it in its place among the client's replies and sends it
    once ``when_committed`` calls back, or INTERNAL_ERROR instead if the commit
    failed: one wait per client and commit, not a Deferred per reply.
    """

    reply: Reply


def settled(result: Deferred[Reply]) -> Reply | None:
    """The reply of a Deferred that has already fired with one (as the memory store's do), else None.

    Reading it directly spares the two callbacks per command that chaining onto
    an already-fired Deferred costs. A fired, unpaused Deferred has run every
    callback it was given; a failure, or a Deferred still waiting (unfired,
    paused or chained to another), takes the ordinary path.
    """
    if result.called and not result.paused:
        value = result.result
        if isinstance(value, Reply):
            return value
    return None


class CommandTable:
    """All verbs of the server; dispatches requests from either transport."""

    def __init__(self, sets: Iterable[CommandSet], clock: IReactorTime | None = None) -> None:
        """``clock`` paces the log of refused requests (the reactor if not given)."""
        self.refusals = RefusalLog(clock)
        """Where the front ends and the table report refused input (logged under ERROR)."""
        self.help = help.Help()
        builtin = CommandSet("general")
        builtin.verb("HELP", Arg("verb", optional=True), summary=help.SUMMARY, errors=("unknown-command",))(
            self.help.handler
        )
        sets = [builtin, *sets]
        self._by_verb: dict[str, Command] = {}
        for command in [c for s in sets for c in s.commands]:
            for verb in (command.verb, *command.aliases):
                if verb in self._by_verb:
                    raise ValueError(f"verb {verb} defined twice")
                self._by_verb[verb] = command
        self.help.index([(s.system, s.description, s.commands) for s in sets], self._by_verb)

    def lookup(self, verb: str) -> Command | None:
        """The command for an upper-case verb or alias, if there is one."""
        return self._by_verb.get(verb)

    def literal_limit(self, verb: str, config: Config) -> int:
        """The largest literal the verb accepts (``--max-message`` for unknown verbs)."""
        command = self._by_verb.get(verb)
        return command.literal_limit(config) if command else config.max_message

    def literal_sink(self, request: Request, broker: Broker, session: Session) -> LiteralSink | None:
        """A sink for the request's literal when its verb streams literals, else None."""
        command = self._by_verb.get(request.verb)
        if command is None or command.literal_sink is None or request.bad_tag:
            return None
        return command.literal_sink(broker, session)

    def dispatch(self, broker: Broker, session: Session, request: Request) -> Reply | Unconfirmed | Deferred[Reply]:
        """Run one request; always yields a reply, never raises.

        The reply comes back as it is when it is ready and nothing waits to be
        committed (no Deferred to build and fire: this is every message's
        path), as :class:`Unconfirmed` when it is ready but must wait for the
        commit, or as a Deferred when it is not ready (already confirmed when
        it fires). A request waits while an earlier command of the same client
        holds it (a LOGIN being checked), so pipelined commands see its outcome.
        """
        if session is not None and session.held:
            held = session.settled()
            return held.addCallback(lambda _: self.awaitable(self.dispatch(broker, session, request), broker))
        command = self._by_verb.get(request.verb)
        if command is None or request.bad_tag:
            return self._refused(broker, session, request)
        try:
            values = command.bind(request.args, request.literal)
        except ValueError as error:
            return self._refused(broker, session, request, Err("bad-args", f"{error}; usage: {command.usage}"))
        try:
            result = command.handler(broker, session, **values)
        except (DomainError, Refused) as error:
            result = reply_for(error)
        except Exception:
            result = self._failed(Failure(), command)
        if not isinstance(result, Reply):  # a Deferred (isinstance on Deferred, an ABC, is slow)
            reply = settled(result)
            if reply is None:
                return result.addErrback(self._failed, command).addCallback(self.confirm, broker)
            result = reply
        return Unconfirmed(result) if broker.durability.pending else result

    def _refused(self, broker: Broker, session: Session | None, request: Request, error: Err | None = None) -> Err:
        """The reply to a malformed request (bad tag, no verb, unknown verb, or ``error``), logged as refused."""
        error = error or help.malformed(request)
        who = f"{session.transport_name} {host_port(session.peer)}" if session is not None else "unknown client"
        self.refusals.refused(who, error.code, error.text)
        return error

    def awaitable(self, result: Reply | Unconfirmed | Deferred[Reply], broker: Broker) -> Reply | Deferred[Reply]:
        """A result of :meth:`dispatch` as a reply or a Deferred of one (an Unconfirmed reply waits in a Deferred)."""
        return self.confirm(result.reply, broker) if isinstance(result, Unconfirmed) else result

    def confirm(self, reply: Reply, broker: Broker) -> Reply | Deferred[Reply]:
        """The reply once the changes made so far are durable (a failed commit turns it into ERR internal)."""
        confirmed = broker.durability.confirm(reply)
        if confirmed is not reply:
            confirmed.addErrback(lambda _: INTERNAL_ERROR)
        return confirmed

    def _failed(self, failure: Failure, command: Command) -> Reply:
        if failure.check(DomainError, Refused):
            return reply_for(failure.value)
        log.failure("{verb} failed", failure, verb=command.verb, category="ERROR")
        return INTERNAL_ERROR
