"""Shared fixtures for the forum tests: hostile names, a broker with TCP clients, SQLite and at-once stores."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from msgsvc.domain.broker import Broker
from tests.accounts_helpers import forum_broker, result_of
from tests.helpers import OnRedis, TcpHarness, run_now
from tests.redis_sync import shared_redis

HOSTILE_NAMES = [b"..", b".", b"/etc", b"a/b", b"a\\b", b".hidden", b"x" * 65, b"caf\xc3\xa9", b"nul\x00"]


class ForumTestCase(TestCase):
    """A broker with cheap, in-place password hashing, and TCP clients to drive it."""

    def store_url(self) -> str:
        """The store under test: memory here, SQLite in the Sqlite* subclasses."""
        return "memory"

    def setUp(self) -> None:
        self.clock = Clock()
        self.broker = forum_broker(self.clock, store=self.store_url(), max_clients=0, max_upload=1 << 20)
        self.addCleanup(self.broker.stores.close)
        self.ports = iter(range(40000, 41000))

    def client(self, user: str | None = None) -> TcpHarness:
        """A new TCP connection, registered and logged in as ``user`` if given."""
        harness = TcpHarness(self.broker, port=next(self.ports))
        harness.output()
        if user is not None:
            reply = harness.command(b"REGISTER " + user.encode() + b" pw-" + user.encode())
            self.assertEqual((reply.kind, reply.text), ("OK", "Welcome to the forum"))
        return harness

    def assertReply(self, reply, kind: str, text: str | None = None, code: str | None = None) -> None:
        """The reply has this kind, and this text / error code when given."""
        self.assertEqual(reply.kind, kind, reply)
        if text is not None:
            self.assertEqual(reply.text, text)
        if code is not None:
            self.assertEqual(reply.code, code, reply)

    def files_on_disk(self) -> list[str]:
        """Names in the upload directory."""
        return sorted(os.listdir(self.broker.forum.files.directory))


class _OnRedis(OnRedis):
    """Runs a forum test class on the Redis store, where kept files are in Redis."""

    def files_on_disk(self) -> list[str]:
        """Parts in this process's directory, and each file kept in Redis named as the disk store names it."""
        parts = os.listdir(self.broker.forum.files.directory)
        redis = shared_redis()
        kept = redis.command("HKEYS", "msgsvc:blobs").result
        redis.close()
        return sorted(parts + [key.decode() + ".blob" for key in kept])


class AnswersAtOnce:
    """Wraps a store so that every operation answers with its value, or raises, as a synchronous store may."""

    def __init__(self, store: object) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Callable[..., object]:
        operation = getattr(self._store, name)

        def at_once(*args: object) -> object:
            answer = operation(*args)
            if not isinstance(answer, Deferred):
                return answer
            outcome = result_of(answer)
            if isinstance(outcome, Failure):
                outcome.raiseException()
            return outcome

        return at_once


def answering_at_once(broker: Broker) -> Broker:
    """A new broker over ``broker``'s stores, its tweet, account and forum stores answering at once."""
    stores = broker.stores
    at_once = replace(
        stores,
        tweets=AnswersAtOnce(stores.tweets),
        accounts=AnswersAtOnce(stores.accounts),
        forum=AnswersAtOnce(stores.forum),
    )
    return Broker(at_once, broker.config, broker.clock, run_now)


class _AtOnce:
    """Runs a forum test class on stores that answer at once (values, and exceptions raised)."""

    def setUp(self) -> None:
        super().setUp()
        self.broker = answering_at_once(self.broker)
