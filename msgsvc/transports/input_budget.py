# -*- test-case-name: tests.test_input_budget -*-
"""One server-wide cap on the memory that unfinished input may hold.

Each TCP client may send a literal of up to ``--max-message`` bytes, and keeps
what has arrived of it in memory until the last byte comes. Without a shared
cap, many clients each leaving a large literal unfinished could hold
``clients x --max-message`` bytes for as long as the idle timeout allows. The
budget counts those bytes across every connection of one listener (one
:class:`InputBudget` per ``ConnectionFactory``), so the total stays under
``--max-pending-input`` however many clients there are.
"""

from __future__ import annotations

from twisted.logger import Logger

log = Logger()


class InputBudget:
    """Bytes of unfinished in-memory literals that all connections together may hold."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        """Bytes charged and not yet released."""

    def charge(self, size: int) -> bool:
        """Take ``size`` more bytes; False (and nothing taken) when that would pass the limit."""
        if self.held + size > self.limit:
            return False
        self.held += size
        return True

    def release(self, size: int) -> None:
        """Give back ``size`` bytes charged earlier."""
        self.held -= size
        if self.held < 0:  # a bug: never let it hide as extra headroom
            log.error("input budget released {n} bytes more than charged", n=-self.held, category="ERROR")
            self.held = 0
