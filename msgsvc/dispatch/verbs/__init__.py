"""The verbs of every system; :func:`build_table` joins them into the server's command table."""

from __future__ import annotations

from msgsvc.dispatch.commands import CommandTable
from msgsvc.dispatch.verbs import chat, diagnostics, forum, general, microblog, queue


def build_table() -> CommandTable:
    """The command table both transports dispatch through."""
    return CommandTable(
        [
            general.commands,
            queue.commands,
            chat.commands,
            forum.commands,
            microblog.commands,
            diagnostics.commands,
        ]
    )
