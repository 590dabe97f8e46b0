"""Store answers: a store operation may answer at once (a value) or later (a Deferred).

The memory and SQLite stores answer at once, so a message's path builds no
Deferred; a networked store answers later. The domain takes both, through
:func:`deferred` where it chains on the answer, or by testing for a Deferred
on its hot paths.
"""

from __future__ import annotations

from typing import TypeVar

from twisted.internet.defer import Deferred, succeed

T = TypeVar("T")

Answer = T | Deferred[T]
"""What a store operation returns: the value, or a Deferred firing with it."""


def deferred(answer: Answer[T]) -> Deferred[T]:
    """The answer as a Deferred (an already-fired one for a value)."""
    return answer if isinstance(answer, Deferred) else succeed(answer)
