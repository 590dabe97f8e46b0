# -*- test-case-name: tests.test_redis_store -*-
"""The Redis stores (``--store redis://HOST:PORT/DB``): state shared by every msgsvc process on that Redis.

Opening checks that the Redis answers (blocking, at most a few seconds, before
the reactor runs) and fails with StoreError and a one-line reason if not;
the stores then share one connection, made on first use (see ``redis_connection``).

Durability: every store operation answers with a Deferred fired by Redis's
reply, which comes once Redis has made the change (and, with ``appendonly
yes`` and ``appendfsync always``, written it to its log before replying). So
a reply that waits for its store answer is already confirmed after Redis
acknowledged the change, and the stores' IDurability is ``Immediate``. What
survives a crash of Redis itself is Redis's persistence setting (see
docs/operations.md).

Uploaded files are in Redis too, in chunks (see ``redis_files``). Live state
(waiting receivers, chat, presence, logins) is shared through the node link
(see ``redis_cluster``), started by the broker.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IReactorTime

from msgsvc.store.redis_cluster import RedisNodeLink
from msgsvc.store.redis_connection import Redis, check_reachable, parse_url
from msgsvc.store.redis_files import RedisBlobStore
from msgsvc.store.redis_forum import RedisForumStore
from msgsvc.store.redis_queues import RedisQueueStore
from msgsvc.store.redis_records import RedisAccountStore, RedisTweetStore
from msgsvc.store.registry import Stores


def open_stores(url: str, clock: IReactorTime) -> Stores:
    """The stores of ``--store redis://HOST:PORT/DB``; StoreError with a one-line reason if Redis cannot be used."""
    address = parse_url(url)
    check_reachable(address)
    redis = Redis(address, clock)
    link = RedisNodeLink(redis, clock)

    def close() -> Deferred[None] | None:
        left = link.stop()  # its last commands go before the connection's closing PING
        closed = redis.close()
        return gatherResults([d for d in (left, closed) if d is not None]).addCallback(lambda _: None)

    return stores_over(redis, link.node, link, close)


def stores_over(
    redis: Redis, holder: str, link: RedisNodeLink | None, close: Callable[[], Deferred[None] | None]
) -> Stores:
    """The Redis stores on ``redis`` for the node ``holder``, linked to the others by ``link``; ``close`` ends both."""
    files = RedisBlobStore(redis)

    def close_all() -> Deferred[None] | None:
        files.close()
        return close()

    return Stores(
        queues=RedisQueueStore(redis, holder=holder),
        tweets=RedisTweetStore(redis),
        accounts=RedisAccountStore(redis),
        forum=RedisForumStore(redis),
        files=files,
        close=close_all,
        cluster=link,
    )
