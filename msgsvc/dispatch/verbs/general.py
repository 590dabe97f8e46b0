"""General verbs: PING and QUIT (HELP is built into the command table)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from msgsvc.dispatch.commands import CommandSet
from msgsvc.protocol.wire import Ok

if TYPE_CHECKING:
    from msgsvc.domain.broker import Broker
    from msgsvc.domain.session import Session

commands = CommandSet("general", "check the server, list commands, leave")


@commands.verb("PING", summary="check the server answers", errors=())
def ping(broker: Broker, session: Session) -> Ok:
    return Ok("PONG")


@commands.verb("QUIT", summary="end the connection or UDP session", aliases=("EXIT", "XIT"), errors=())
def quit_(broker: Broker, session: Session) -> Ok:
    return Ok("bye", closes=True)
