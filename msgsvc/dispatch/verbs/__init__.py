"""The verbs of every system; :func:`build_table` joins them into the server's command table."""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime

from msgsvc.dispatch.table import CommandTable
from msgsvc.dispatch.verbs import chat, diagnostics, forum, general, microblog, queue


def build_table(clock: IReactorTime | None = None) -> CommandTable:
    """The command table every transport dispatches through (``clock`` paces its log of refusals)."""
    return CommandTable(
        [
            general.commands,
            queue.commands,
            chat.commands,
            forum.commands,
            microblog.commands,
            diagnostics.commands,
        ],
        clock,
    )
