"""Store answers: a store operation may answer at once (a value) or later (a Deferred).

The memory and SQLite queue stores answer at once, so a message's path builds
no Deferred; a networked store answers later. The domain takes both, through
:func:`deferred`, :func:`attempt` or :func:`then` where it chains on the answer, or by testing
the answer's type on its hot paths (a test for the expected value's own type:
``isinstance`` against Deferred, an abstract class, costs several times more).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeAlias, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred, succeed

T = TypeVar("T")
U = TypeVar("U")
P = ParamSpec("P")

Answer: TypeAlias = T | Deferred[T]
"""What a store operation returns: the value, or a Deferred firing with it."""


def deferred(answer: Answer[T]) -> Deferred[T]:
    """The answer as a Deferred (an already-fired one for a value)."""
    return answer if isinstance(answer, Deferred) else succeed(answer)


def attempt(operation: Callable[P, Answer[T]], *args: P.args, **kwargs: P.kwargs) -> Deferred[T]:
    """``maybeDeferred`` for an operation that answers a value or a Deferred (a store's, ``stopListening``...).

    Its answer as a Deferred, a failed one if it raises.
    """
    return maybeDeferred(lambda: deferred(operation(*args, **kwargs)))


def then(answer: Answer[T], callback: Callable[..., Answer[U]], *args: Any) -> Answer[U]:
    """``callback(value, *args)``: at once for a value, once it fires for a Deferred (which then carries the result)."""
    if isinstance(answer, Deferred):
        return answer.addCallback(callback, *args)
    return callback(answer, *args)
