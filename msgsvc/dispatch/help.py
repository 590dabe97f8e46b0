# -*- test-case-name: tests.test_commands -*-
"""HELP's text: every verb grouped by system, or one verb's usage, summary and errors.

Both are DATA payloads of plain text lines ended by CRLF, readable in ``nc``.
``HELP`` gives one heading line per system (``== queue: ...``) followed by its
verbs, one per line starting with the verb's usage, then its summary.
``HELP <verb>`` gives the verb's usage, summary, system, aliases, the error
codes it can answer with, and the codes any command may get.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from msgsvc.protocol.wire import Data, Err, Request, listing, printable

if TYPE_CHECKING:
    from msgsvc.dispatch.commands import Command
    from msgsvc.domain.broker import Broker
    from msgsvc.domain.session import Session

ERROR_CODES = frozenset(
    """unknown-command bad-args line-too-long too-big too-long full empty no-name name-taken no-file
    not-logged-in no-user auth in-use exists no-thread no-msg not-owner tls-required internal""".split()
)
"""Every error code of the protocol (docs/protocol.md, "Error codes"); a verb may declare only these."""

COMMON_ERRORS = ("bad-args", "internal", "line-too-long", "too-big")
"""Codes any command may get: wrong arguments, a server bug, an over-long line, a literal over
the limit or a reply too large for one UDP datagram. HELP notes them once instead of per verb."""

USAGE_WIDTH = 32
SUMMARY = "list commands by system; HELP <verb>: its usage and errors"
"""HELP's own line in the list."""


def unknown(verb: str) -> Err:
    """The reply to a verb the server does not have."""
    return Err("unknown-command", f"unknown command '{printable(verb)}'; HELP lists commands")


def malformed(request: Request) -> Err:
    """The reply to a request whose tag is malformed, or that names no command (the verb is unknown)."""
    if request.bad_tag:
        return Err("bad-args", "a tag is # followed by 1-16 letters or digits, then a space")
    if not request.verb:
        return Err("bad-args", "a command is missing after the tag")
    return unknown(request.verb)


@dataclass
class System:
    """One system's heading in HELP and its verbs, in the order they were declared."""

    name: str
    description: str = ""
    commands: list[Command] = field(default_factory=list)


def group(sets: Iterable[tuple[str, str, list[Command]]]) -> list[System]:
    """Join ``(system, description, commands)`` triples by system name, first seen first.

    Raises ValueError for a verb that declares an error code the protocol does not have.
    """
    systems: dict[str, System] = {}
    for name, description, commands in sets:
        system = systems.setdefault(name, System(name))
        system.description = system.description or description
        for command in commands:
            undefined = sorted(set(command.errors or ()) - ERROR_CODES)
            if undefined:
                raise ValueError(f"{command.verb} declares unknown error codes {undefined}")
            system.commands.append(command)
    return list(systems.values())


def overview(systems: list[System]) -> bytes:
    """The payload of ``HELP``: a heading per system, then its verbs."""
    lines = []
    for system in systems:
        if not system.commands:
            continue
        lines.append(f"== {system.name}: {system.description}" if system.description else f"== {system.name}")
        for command in system.commands:
            aliases = f" (also {', '.join(command.aliases)})" if command.aliases else ""
            lines.append(f"{command.usage:<{USAGE_WIDTH}} {command.summary}{aliases}")
    return listing(lines)


def detail(command: Command, system: str) -> bytes:
    """The payload of ``HELP <verb>``."""
    own = command.errors or ()
    lines = [command.usage, f"  {command.summary}", f"  system: {system}"]
    if command.aliases:
        lines.append(f"  aliases: {', '.join(command.aliases)}")
    if command.remembers_client:
        lines.append("  over UDP: starts a session for your address (events arrive as datagrams)")
    lines.append(f"  errors: {', '.join(own) if own else 'none of its own'}")
    lines.append(f"  any command may get: {', '.join(COMMON_ERRORS)}")
    return listing(lines)


class Help:
    """The HELP verb of a command table: call :meth:`index` once the table knows every verb."""

    def __init__(self) -> None:
        self.systems: list[System] = []
        """The verbs grouped by system, as HELP lists them."""
        self._overview = b""
        self._by_verb: dict[str, Command] = {}
        self._system_of: dict[str, str] = {}

    def index(self, sets: Iterable[tuple[str, str, list[Command]]], by_verb: dict[str, Command]) -> None:
        """Learn the table's ``(system, description, commands)`` sets and its verbs and aliases."""
        self.systems = group(sets)
        self._overview = overview(self.systems)
        self._by_verb = by_verb
        self._system_of = {command.verb: system.name for system in self.systems for command in system.commands}

    def handler(self, broker: Broker, session: Session, verb: str | None) -> Data | Err:
        """``HELP``: every verb by system; ``HELP <verb>`` (any case, aliases too): that verb in detail."""
        if verb is None:
            return Data(self._overview, "help")
        command = self._by_verb.get(verb.upper())
        if command is None:
            return unknown(verb.upper())
        return Data(detail(command, self._system_of[command.verb]), "help")
