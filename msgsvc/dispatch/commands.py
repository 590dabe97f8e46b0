# -*- test-case-name: tests.test_commands -*-
"""The command table: every verb defined once, with its arguments, checks and handler.

Each system declares its verbs in a :class:`CommandSet` (see ``msgsvc.dispatch.verbs``);
a :class:`CommandTable` joins the sets, binds a request's arguments to the
handler's parameters and turns every failure into an ``ERR`` reply. Both
transports dispatch through the same table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from msgsvc.dispatch import help
from msgsvc.protocol.wire import Err, Reply, Request, host_port

if TYPE_CHECKING:
    from msgsvc.config import Config
    from msgsvc.domain.broker import Broker
    from msgsvc.domain.session import Session

log = Logger()

Handler = Callable[..., "Reply | Deferred[Reply]"]

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


class Refused(Exception):
    """A command failed in an expected way; it becomes ``ERR code text``."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(code, text)
        self.reply = Err(code, text)


class LiteralSink(Protocol):
    """Receives a large literal piece by piece instead of in memory (e.g. a forum upload)."""

    def write(self, data: bytes) -> None:
        """The next bytes of the literal."""

    def finish(self) -> Any:
        """The literal is complete; the returned value is the handler's argument."""

    def abort(self) -> None:
        """The client left before the literal was complete: discard it."""


@dataclass(frozen=True)
class Arg:
    """A space-free argument, converted by ``convert`` (which raises ValueError)."""

    name: str
    convert: Callable[[str], Any] = str
    optional: bool = False
    default: Any = None
    prefix: str = ""
    """An optional argument with a prefix (``@queue``) is present only when the next word has it."""
    label: str = ""
    raw_prefix: bytes = field(init=False, repr=False)
    """The prefix as it appears on the wire."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "raw_prefix", self.prefix.encode())

    def usage(self) -> str:
        """How the argument is written in HELP."""
        label = self.label or self.name
        if self.prefix:
            shown = self.prefix + label
        elif self.optional:
            shown = label
        else:
            shown = f"<{label}>"
        return f"[{shown}]" if self.optional else shown

    def bind(self, raw: bytes) -> Any:
        """Convert the raw bytes of this argument."""
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"{self.label or self.name} must be ASCII") from None
        return self.convert(text[len(self.prefix) :])


@dataclass(frozen=True)
class Text:
    """The final argument: the rest of the line verbatim, or a literal's bytes."""

    name: str
    label: str = ""

    def usage(self) -> str:
        """How the argument is written in HELP."""
        return f"<{self.label or self.name}>"

    def bind(self, raw: bytes) -> bytes:
        """Text (or what a literal sink made of it) is taken as it is."""
        return raw


@dataclass(frozen=True)
class Command:
    """One verb: its arguments, its handler and how it shows in HELP."""

    verb: str
    handler: Handler
    summary: str
    params: tuple[Arg | Text, ...] = ()
    aliases: tuple[str, ...] = ()
    starts_session: bool = False
    """Over UDP, this verb opens a session for the sender's address."""
    literal_limit: Callable[[Config], int] = field(default=lambda config: config.max_message)
    literal_sink: Callable[[Broker, Session], LiteralSink] | None = None
    """Where a literal for this verb is streamed; by default it is collected in memory."""
    errors: tuple[str, ...] | None = None
    """The error codes (SPEC section 6) the verb itself can answer with, for HELP; None: not declared."""

    @property
    def usage(self) -> str:
        """The verb with its arguments, as HELP shows it."""
        return " ".join([self.verb, *(p.usage() for p in self.params)])

    def bind(self, args: bytes, literal: bytes | None) -> dict[str, Any]:
        """Map the request's arguments onto the handler's keyword parameters."""
        params = self.params
        values: dict[str, Any] = {}
        if literal is not None:
            if not params:
                raise ValueError(f"{self.verb} takes no arguments")
            last = params[-1]
            values[last.name] = last.bind(literal)
            params = params[:-1]
        rest = args
        for param in params:
            if isinstance(param, Text):
                values[param.name] = rest
                rest = b""
                break
            word, _, remainder = rest.lstrip(b" ").partition(b" ")
            if word and word.startswith(param.raw_prefix):
                values[param.name] = param.bind(word)
                rest = remainder
            elif param.optional:
                values[param.name] = param.default
            else:
                raise ValueError(f"missing {param.usage()}")
        if rest and rest.strip(b" "):
            raise ValueError("too many arguments")
        return values


class CommandSet:
    """The verbs of one system, declared with the :meth:`verb` decorator; HELP lists them under ``system``."""

    def __init__(self, system: str = "other", description: str = "") -> None:
        self.system = system
        self.description = description
        self.commands: list[Command] = []

    def verb(self, name: str, *params: Arg | Text, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        """Declare ``handler(broker, session, **arguments)`` as the verb ``name``."""

        def register(handler: Handler) -> Handler:
            self.commands.append(Command(name, handler, summary, params, **options))
            return handler

        return register


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

    def __init__(self, sets: Iterable[CommandSet]) -> None:
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
        except Refused as refused:
            result = refused.reply
        except Exception:
            result = self._failed(Failure(), command)
        if not isinstance(result, Reply):  # a Deferred (isinstance on Deferred, an ABC, is slow)
            reply = settled(result)
            if reply is None:
                return result.addErrback(self._failed, command).addCallback(self.confirm, broker)
            result = reply
        return Unconfirmed(result) if broker.durability.pending else result

    @staticmethod
    def _refused(broker: Broker, session: Session | None, request: Request, error: Err | None = None) -> Err:
        """The reply to a malformed request (bad tag, no verb, unknown verb, or ``error``), logged as refused."""
        error = error or help.malformed(request)
        who = f"{session.transport_name} {host_port(session.peer)}" if session is not None else "unknown client"
        broker.refusals.refused(who, error.code, error.text)
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
        if failure.check(Refused):
            return failure.value.reply
        log.failure("{verb} failed", failure, verb=command.verb, category="ERROR")
        return INTERNAL_ERROR
