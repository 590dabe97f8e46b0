"""Shared helpers for the forum account tests: a cheap-hashing broker, and results of fired Deferreds."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from msgsvc.domain.errors import DomainError
from tests.helpers import make_broker


def forum_broker(clock: Clock | None = None, **settings):
    """A broker with the cheapest password hash, hashing in place."""
    broker = make_broker(clock, password_cost=1, **settings)
    return broker


def result_of(d: Deferred):
    """The result of a Deferred that has already fired (a Failure is returned, not raised)."""
    results = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    return results[0]


def refusal_of(d: Deferred) -> tuple[type[DomainError], str]:
    """The (error type, text) a Deferred failed with; it must have failed with a DomainError."""
    failure = result_of(d)
    failure.trap(DomainError)
    return type(failure.value), failure.value.text
