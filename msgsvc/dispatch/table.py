# -*- test-case-name: tests.test_commands -*-
"""The command table: joins the verb sets, dispatches every request, turns every failure into ``ERR``.

Every front end looks a request up once (:meth:`CommandTable.prepare`, whose
:class:`Plan` tells the framing how large a literal may be and where it goes)
and dispatches it through the same table, which binds the request's
arguments to the handler's parameters, maps the domain's errors to replies,
and says whether a reply must wait for the commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from msgsvc.dispatch import help
from msgsvc.dispatch.commands import Arg, Command, CommandSet, LiteralSink
from msgsvc.dispatch.errors import reply_for
from msgsvc.dispatch.refusals import RefusalLog
from msgsvc.domain.errors import DomainError
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


Result = Reply | Unconfirmed | Deferred[Reply]
"""What dispatching a request yields (see :meth:`CommandTable.dispatch`)."""
Runner = Callable[["Broker", "Session | None", bytes, "bytes | None"], Result]
"""A verb's command, compiled: ``run(broker, session, args, literal)``, the request's arguments and literal."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What the table does with requests of one verb (see :meth:`CommandTable.prepare`)."""

    command: Command | None
    """None for a verb the table does not know."""
    refused: bool = False
    """The request is refused whatever it holds (an unknown verb, or a bad tag): its literal is skipped."""
    remembers_client: bool = False
    """Running the request makes the server keep the client: a front end that otherwise handles requests
    one-off (UDP) opens a lasting session for it (``Command.remembers_client``, unless refused)."""
    identity: bool = False
    """Running the request gives the client an identity (``Command.identity``)."""
    run: Runner | None = None
    """The command compiled (None when refused)."""

    def literal_limit(self, config: Config) -> int:
        """The largest literal the request may carry (``--max-message`` for an unknown verb)."""
        return self.command.literal_limit(config) if self.command is not None else config.max_message

    def literal_sink(self, broker: Broker, session: Session | None) -> LiteralSink | None:
        """A new sink for the request's literal when its verb streams literals, else None (kept in memory)."""
        command = self.command
        if self.refused or command is None or command.literal_sink is None:
            return None
        assert session is not None  # a verb the table runs (not refused) runs for a client
        return command.literal_sink(broker, session)


REFUSED = Plan(None, refused=True)
"""The plan of a verb the table does not know."""

UNKNOWN_VERB = "unknown"
"""What :class:`DispatchObserver` hears as the verb of a request whose verb the table does not know."""


class DispatchObserver(Protocol):
    """Told of every dispatched command once its reply is known (the metrics count them)."""

    def dispatched(self, verb: str, reply: Reply) -> None:
        """``verb`` (the command's own, or UNKNOWN_VERB) was answered ``reply``; called on every command's path."""


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
        runners = {verb: self._compile(command) for verb, command in self._by_verb.items()}
        self._plans = {
            verb: Plan(command, False, command.remembers_client, command.identity, runners[verb])
            for verb, command in self._by_verb.items()
        }
        self._bad_tag_plans = {verb: Plan(command, refused=True) for verb, command in self._by_verb.items()}
        self.plain: dict[bytes, Runner] = {verb.encode(): run for verb, run in runners.items()}
        """The commands by verb as sent (upper case), for a request with no tag and no literal: a front end
        whose line's first word is found here (a tag starts with ``#``) and that does not end with ``}``
        (as a literal marker does) runs ``run(broker, session, args, None)``, ``args`` the rest of the line
        after the first space, as :meth:`dispatch` would: a dict look-up and a call per command."""
        self.help.index([(s.system, s.description, s.commands) for s in sets], self._by_verb)
        self.observer: DispatchObserver | None = None
        """Told of each command's reply (verb, reply) when set: the server's metrics."""

    @property
    def verbs(self) -> list[str]:
        """Every verb and alias the table serves, sorted."""
        return sorted(self._by_verb)

    def lookup(self, verb: str) -> Command | None:
        """The command for an upper-case verb or alias, if there is one (front ends use :meth:`prepare`)."""
        return self._by_verb.get(verb)

    def prepare(self, request: Request) -> Plan:
        """What the table will do with ``request``: the one look-up of its verb, for framing and :meth:`dispatch`.

        The plan says how large a literal the request may carry and where it
        goes, and whether the verb keeps the client. Plans are made once per
        verb (and per verb behind a bad tag), so preparing a request allocates
        nothing.
        """
        if request.bad_tag:
            return self._bad_tag_plans.get(request.verb, REFUSED)
        return self._plans.get(request.verb, REFUSED)

    def dispatch(
        self, broker: Broker, session: Session | None, request: Request, plan: Plan | None = None
    ) -> Reply | Unconfirmed | Deferred[Reply]:
        """Run one request (as ``plan``, its :meth:`prepare`, says); always yields a reply, never raises.

        The reply comes back as it is when it is ready and nothing waits to be
        committed (no Deferred to build and fire: this is every message's
        path), as :class:`Unconfirmed` when it is ready but must wait for the
        commit, or as a Deferred when it is not ready (already confirmed when
        it fires). A request waits while an earlier command of the same client
        holds it (a LOGIN being checked), so pipelined commands see its outcome.
        ``session`` is None only where no client is involved (tests of verbs that need none).
        """
        if plan is None:
            plan = self.prepare(request)
        if plan.run is None:  # only a refused plan has none
            if session is not None and (held := session.settled()) is not None:
                return held.addCallback(lambda _: self.awaitable(self.dispatch(broker, session, request, plan), broker))
            return self._refused(session, plan.command, help.malformed(request))
        return plan.run(broker, session, request.args, request.literal)

    def _compile(self, command: Command) -> Runner:
        """``command`` as one function: argument binding, handler, errors, observer, commit wait."""
        bind, handler, verb = command.bind, command.handler, command.verb

        def run(broker: Broker, session: Session | None, args: bytes, literal: bytes | None) -> Result:
            if session is not None and (held := session.settled()) is not None:
                return held.addCallback(lambda _: self.awaitable(run(broker, session, args, literal), broker))
            try:
                values = bind(args, literal)
            except ValueError as error:
                return self._refused(session, command, Err("bad-args", f"{error}; usage: {command.usage}"))
            try:
                result = handler(broker, session, *values)
            except DomainError as error:
                result = reply_for(error)
            except Exception:
                result = self._failed(Failure(), command)
            observer = self.observer
            if not isinstance(result, Reply):  # a Deferred (isinstance on Deferred, an ABC, is slow)
                reply = settled(result)
                if reply is None:
                    result.addErrback(self._failed, command)
                    if observer is not None:
                        result.addCallback(self._observed, observer, verb)
                    return result.addCallback(self.confirm, broker)
                result = reply
            if observer is not None:
                observer.dispatched(verb, result)
            return Unconfirmed(result) if broker.durability.pending else result

        return run

    @staticmethod
    def _observed(reply: Reply, observer: DispatchObserver, verb: str) -> Reply:
        observer.dispatched(verb, reply)
        return reply

    def _refused(self, session: Session | None, command: Command | None, error: Err) -> Err:
        """The reply to a malformed request (bad tag, no verb, unknown verb, bad arguments), logged as refused."""
        who = f"{session.transport_name} {host_port(session.peer)}" if session is not None else "unknown client"
        self.refusals.refused(who, error.code, error.text)
        if self.observer is not None:
            self.observer.dispatched(command.verb if command is not None else UNKNOWN_VERB, error)
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
        if isinstance(failure.value, DomainError):
            return reply_for(failure.value)
        log.failure("{verb} failed", failure, verb=command.verb, category="ERROR")
        return INTERNAL_ERROR
