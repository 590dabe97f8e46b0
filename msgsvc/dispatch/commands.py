# -*- test-case-name: tests.test_commands -*-
"""How a verb is declared: its arguments, how they bind to its handler, and its sets per system.

Each system declares its verbs in a :class:`CommandSet` (see ``msgsvc.dispatch.verbs``);
:class:`msgsvc.dispatch.table.CommandTable` joins the sets and dispatches.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

from twisted.internet.defer import Deferred

from msgsvc.protocol.wire import Reply

if TYPE_CHECKING:
    from msgsvc.config import Config
    from msgsvc.domain.broker import Broker
    from msgsvc.domain.session import Session

Handler = Callable[..., "Reply | Deferred[Any]"]
"""A verb's handler: ``handler(broker, session, *arguments)`` answers a Reply, or a Deferred firing with one.

Deferred is invariant (a ``Deferred[Ok]`` is no ``Deferred[Reply]``), so the
table holds handlers with a Deferred of any result; :meth:`CommandSet.verb`
checks that what a declared handler's Deferred fires with is a Reply.
"""

P = ParamSpec("P")
MEMO_SIZE = 1024
"""Values an argument with ``memo`` remembers at most (so random input cannot grow them without bound)."""
_UNKNOWN = object()
Binder = Callable[[bytes, "bytes | None"], list[Any]]
R = TypeVar("R", bound=Reply)


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
    memo: bool = False
    """``convert`` is pure: its values are remembered by the argument's bytes (up to MEMO_SIZE of them)."""
    raw_prefix: bytes = field(init=False, repr=False)
    """The prefix as it appears on the wire."""
    values: dict[bytes, Any] | None = field(init=False, repr=False, compare=False)
    """The values remembered, when ``memo``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "raw_prefix", self.prefix.encode())
        object.__setattr__(self, "values", {} if self.memo else None)

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
        values = self.values
        if values is not None and (value := values.get(raw, _UNKNOWN)) is not _UNKNOWN:
            return value
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"{self.label or self.name} must be ASCII") from None
        value = self.convert(text[len(self.prefix) :])
        if values is not None and len(values) < MEMO_SIZE:
            values[raw] = value
        return value


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
    remembers_client: bool = False
    """The verb makes the server keep the client (events, a name, a login): a front end that
    otherwise handles requests one-off (UDP) opens a lasting session for it."""
    identity: bool = False
    """The verb gives the client an identity (an account): a UDP front end binds the session to a key."""
    literal_limit: Callable[[Config], int] = field(default=lambda config: config.max_message)
    literal_sink: Callable[[Broker, Session], LiteralSink] | None = None
    """Where a literal for this verb is streamed; by default it is collected in memory."""
    errors: tuple[str, ...] | None = None
    """The error codes (docs/protocol.md) the verb itself can answer with, for HELP; None: not declared."""
    bind: Binder = field(init=False, repr=False, compare=False)
    """``bind(args, literal)``: the handler's arguments after ``broker, session``, in order, from the
    request's arguments and literal (ValueError if they do not fit)."""

    def __post_init__(self) -> None:
        """Refuse a handler whose parameters are not ``broker, session`` and the declared arguments, in order."""
        declared = ["broker", "session", *(param.name for param in self.params)]
        actual = list(inspect.signature(self.handler).parameters)
        if actual != declared:
            raise TypeError(
                f"{self.verb}: the handler takes ({', '.join(actual)}), the verb declares ({', '.join(declared)})"
            )
        object.__setattr__(self, "bind", _binder(self))

    @property
    def usage(self) -> str:
        """The verb with its arguments, as HELP shows it."""
        return " ".join([self.verb, *(p.usage() for p in self.params)])


def _binder(command: Command) -> Binder:
    """``command.bind``, compiled: the converters and rules of its arguments looked up once."""
    params = command.params
    if any(isinstance(param, Text) for param in params[:-1]):
        raise TypeError(f"{command.verb}: only the last argument may be the rest of the line")
    words = [(p.raw_prefix, p.optional, p.default, p.bind, p.values, p) for p in params if isinstance(p, Arg)]
    text = bool(params) and isinstance(params[-1], Text)
    last = params[-1] if params else None
    on_line = (tuple(words), text)
    beside_literal = (tuple(words[:-1]) if not text else tuple(words), False)
    no_args = [w[2] for w in words] + ([b""] if text else []) if all(w[1] for w in words) else None
    """The values of a line with no arguments, when every argument may be left out (RECV's case)."""

    def bind(args: bytes, literal: bytes | None) -> list[Any]:
        if literal is None:
            if not args and no_args is not None:
                return no_args.copy()
            specs, rest_is_text = on_line
        elif last is None:
            raise ValueError(f"{command.verb} takes no arguments")
        else:
            bound = last.bind(literal)
            specs, rest_is_text = beside_literal
        values: list[Any] = []
        rest = args
        for prefix, optional, default, convert, memo, param in specs:
            word, _, remainder = rest.lstrip(b" ").partition(b" ")
            if word and word.startswith(prefix):
                if memo is None or (value := memo.get(word, _UNKNOWN)) is _UNKNOWN:
                    value = convert(word)
                values.append(value)
                rest = remainder
            elif optional:
                values.append(default)
            else:
                raise ValueError(f"missing {param.usage()}")
        if rest_is_text:
            values.append(rest)
        elif rest and rest.strip(b" "):
            raise ValueError("too many arguments")
        if literal is not None:
            values.append(bound)
        return values

    return bind


class CommandSet:
    """The verbs of one system, declared with the :meth:`verb` decorator; HELP lists them under ``system``."""

    def __init__(self, system: str = "other", description: str = "") -> None:
        self.system = system
        self.description = description
        self.commands: list[Command] = []

    def verb(
        self, name: str, *params: Arg | Text, summary: str, **options: Any
    ) -> Callable[[Callable[P, R | Deferred[R]]], Callable[P, R | Deferred[R]]]:
        """Declare ``handler(broker, session, *arguments)`` as the verb ``name``."""

        def register(handler: Callable[P, R | Deferred[R]]) -> Callable[P, R | Deferred[R]]:
            self.commands.append(Command(name, handler, summary, params, **options))
            return handler

        return register
