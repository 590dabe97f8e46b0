"""General verbs: PING and QUIT (HELP is built into the command table)."""

from __future__ import annotations

from msgsvc.commands import CommandSet
from msgsvc.wire import Ok

commands = CommandSet()


@commands.verb("PING", summary="check the server answers")
def ping(broker, session) -> Ok:
    return Ok("PONG")


@commands.verb("QUIT", summary="end the connection or UDP session", aliases=("EXIT", "XIT"))
def quit_(broker, session) -> Ok:
    return Ok("bye", closes=True)
