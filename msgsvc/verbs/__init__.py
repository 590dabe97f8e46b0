"""The verbs of every system; :func:`build_table` joins them into the server's command table."""

from __future__ import annotations

from msgsvc.commands import CommandTable
from msgsvc.verbs import forum, general, queue


def build_table() -> CommandTable:
    """The command table both transports dispatch through."""
    return CommandTable([general.commands, queue.commands, forum.commands])
