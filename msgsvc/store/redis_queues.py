# -*- test-case-name: tests.test_redis_store -*-
"""The Redis queue store: FIFO queues with reservations, shared by every msgsvc process on the Redis.

Per queue ``Q``: ``msgsvc:ready:Q`` a LIST of message ids (head first),
``msgsvc:delayed:Q`` a ZSET of released ids by when they are ready again,
``msgsvc:reserved:Q`` a ZSET of reserved ids by their lease's end; per message
``msgsvc:msg:ID`` a HASH (``q`` queue, ``p`` payload, ``t`` sent at,
``n`` deliveries, ``h`` the store holding its reservation); ``msgsvc:queues``
the SET of queues holding any message; ids come from ``INCR msgsvc:ids``, so
they are unique across processes; ``msgsvc:counters:Q`` a HASH of QSTAT's
counters (``sent``, ``received``, ``acked``, ``redelivered``) for every
process, answered with ``stats`` and kept :data:`COUNTERS_KEPT` seconds after
their last change. Every operation is one Lua script.

Time to run: the queue service owns TTR. It holds each reservation with a
timer and ends it (release, or a move to the dead letters after too many
deliveries, counting a redelivery) in the process that reserved it, exactly as
over the memory store. What the store adds is a lease (:data:`LEASE`,
longer than any sensible TTR) for reservations whose process went away
without ending them: a take or ``stats`` on any process first puts the
queue's expired reservations back at the head, in the order they expire, with
the delayed messages that are due. A reservation is ended only by the store
instance that made it (its ``h``), so one whose lease ran out and was taken
again elsewhere is left to its new holder.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from twisted.internet.defer import Deferred
from zope.interface import implementer

from msgsvc.store.interfaces import IQueueStore, Message, QueueStats
from msgsvc.store.redis_connection import Redis, Script, decode, encode, number

LEASE = 3600.0
"""Seconds a reservation lasts in Redis when its process never ends it."""
COUNTERS = ("sent", "received", "acked", "redelivered")
COUNTERS_KEPT = 7 * 24 * 3600
"""Seconds a queue's counters are kept after they last changed."""

_COMMON = """
local P = 'msgsvc:'
-- a queue's counters, kept for COUNTERS_KEPT seconds after their last change
local function count(q, field, change)
  local key = P..'counters:'..q
  if redis.call('HINCRBY', key, field, change) < 0 then redis.call('HSET', key, field, 0) end
  redis.call('EXPIRE', key, COUNTERS_KEPT)
end
local function forget_if_empty(q)
  if redis.call('EXISTS', P..'ready:'..q, P..'delayed:'..q, P..'reserved:'..q) == 0 then
    redis.call('SREM', P..'queues', q)
  end
end
-- delayed messages that are due and reservations whose lease is over go to the head, the earliest first
local function promote(q, now)
  local due = {}
  for _, key in ipairs({P..'delayed:'..q, P..'reserved:'..q}) do
    local found = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'WITHSCORES')
    for i = 1, #found, 2 do
      due[#due + 1] = {tonumber(found[i + 1]), tonumber(found[i])}
      redis.call('HDEL', P..'msg:'..found[i], 'h')
    end
    if #found > 0 then redis.call('ZREMRANGEBYSCORE', key, '-inf', now) end
  end
  table.sort(due, function(a, b) if a[1] ~= b[1] then return a[1] < b[1] end return a[2] < b[2] end)
  for i = #due, 1, -1 do redis.call('LPUSH', P..'ready:'..q, due[i][2]) end
end
""".replace("COUNTERS_KEPT", str(COUNTERS_KEPT))

_ENQUEUE = Script(
    _COMMON
    + """
local q = ARGV[1]
local id = redis.call('INCR', P..'ids')
redis.call('HSET', P..'msg:'..id, 'q', q, 'p', ARGV[2], 't', ARGV[3], 'n', 0)
redis.call('RPUSH', P..'ready:'..q, id)
redis.call('SADD', P..'queues', q)
count(q, 'sent', 1)
return id
"""
)

_TAKE = Script(
    _COMMON
    + """
local q, now, reserve = ARGV[1], ARGV[2], ARGV[3] == '1'
promote(q, now)
local id = redis.call('LPOP', P..'ready:'..q)
if not id then
  forget_if_empty(q)
  return false
end
local key = P..'msg:'..id
count(q, 'received', 1)
if reserve then
  redis.call('HINCRBY', key, 'n', 1)
  redis.call('HSET', key, 'h', ARGV[5])
  redis.call('ZADD', P..'reserved:'..q, ARGV[4], id)
end
local m = redis.call('HMGET', key, 'p', 't', 'n')
if not reserve then
  redis.call('DEL', key)
  forget_if_empty(q)
end
return {id, m[1], m[2], m[3]}
"""
)

_END = Script(
    _COMMON
    + """
local op, id = ARGV[1], ARGV[2]
local key = P..'msg:'..id
local q = redis.call('HGET', key, 'q')
if not q or redis.call('HGET', key, 'h') ~= ARGV[3] or redis.call('ZREM', P..'reserved:'..q, id) == 0 then
  return 0
end
redis.call('HDEL', key, 'h')
if op == 'acknowledge' then
  redis.call('DEL', key)
  count(q, 'acked', 1)
elseif op == 'release' then
  redis.call('ZADD', P..'delayed:'..q, ARGV[4], id)
  count(q, 'redelivered', 1)
elseif op == 'unreserve' then
  redis.call('HINCRBY', key, 'n', -1)
  count(q, 'received', -1)
  redis.call('LPUSH', P..'ready:'..q, id)
else
  redis.call('HSET', key, 'q', ARGV[4])
  redis.call('RPUSH', P..'ready:'..ARGV[4], id)
  redis.call('SADD', P..'queues', ARGV[4])
end
forget_if_empty(q)
return 1
"""
)

_GIVE_BACK = Script(
    _COMMON
    + """
local q, id = ARGV[1], ARGV[2]
redis.call('HSET', P..'msg:'..id, 'q', q, 'p', ARGV[3], 't', ARGV[4], 'n', ARGV[5])
redis.call('LPUSH', P..'ready:'..q, id)
redis.call('SADD', P..'queues', q)
count(q, 'received', -1)
return 1
"""
)

_DEPTHS = Script(
    """
local P, found = 'msgsvc:', {}
for _, q in ipairs(redis.call('SMEMBERS', P..'queues')) do
  local n = redis.call('LLEN', P..'ready:'..q) + redis.call('ZCARD', P..'delayed:'..q)
  if n > 0 then
    found[#found + 1] = q
    found[#found + 1] = n
  end
end
return found
"""
)

_STATS = Script(
    _COMMON
    + """
local q = ARGV[1]
promote(q, ARGV[2])
local head = redis.call('LINDEX', P..'ready:'..q, 0)
local oldest = head and redis.call('HGET', P..'msg:'..head, 't') or false
local counters = redis.call('HMGET', P..'counters:'..q, 'sent', 'received', 'acked', 'redelivered')
return {redis.call('LLEN', P..'ready:'..q), redis.call('ZCARD', P..'delayed:'..q),
        redis.call('ZCARD', P..'reserved:'..q), oldest, counters}
"""
)


@implementer(IQueueStore)
class RedisQueueStore:
    """Queues in Redis; every answer is a Deferred fired by Redis's reply."""

    def __init__(self, redis: Redis, lease: float = LEASE, holder: str | None = None) -> None:
        """``holder``: this store's mark on its reservations (the node's id, so that reaping the node frees them)."""
        self._redis = redis
        self._lease = lease
        self._holder = holder or uuid4().hex
        """This store's mark on the reservations it makes."""

    def enqueue(self, queue: str, payload: bytes, now: float) -> Deferred[int]:
        return self._redis.run(_ENQUEUE, encode(queue), payload, number(now), convert=int)

    def dequeue(self, queue: str, now: float) -> Deferred[Message | None]:
        return self._take(queue, now, reserve=False)

    def reserve(self, queue: str, now: float) -> Deferred[Message | None]:
        return self._take(queue, now, reserve=True)

    def _take(self, queue: str, now: float, reserve: bool) -> Deferred[Message | None]:
        return self._redis.run(
            _TAKE,
            encode(queue),
            number(now),
            "1" if reserve else "0",
            number(now + self._lease),
            self._holder,
            convert=_message,
        )

    def acknowledge(self, message_id: int) -> Deferred[None]:
        return self._end("acknowledge", message_id)

    def release(self, message_id: int, ready_at: float) -> Deferred[None]:
        return self._end("release", message_id, number(ready_at))

    def move(self, message_id: int, queue: str, now: float) -> Deferred[None]:
        return self._end("move", message_id, encode(queue))

    def unreserve(self, message_id: int) -> Deferred[None]:
        return self._end("unreserve", message_id)

    def _end(self, operation: str, message_id: int, *args: str | bytes) -> Deferred[None]:
        return self._redis.run(_END, operation, str(message_id), self._holder, *args, convert=_nothing)

    def give_back(self, queue: str, message: Message) -> Deferred[None]:
        return self._redis.run(
            _GIVE_BACK,
            encode(queue),
            str(message.id),
            message.payload,
            number(message.enqueued_at),
            str(message.deliveries),
            convert=_nothing,
        )

    def depths(self) -> Deferred[list[tuple[str, int]]]:
        return self._redis.run(_DEPTHS, convert=_depths)

    def stats(self, queue: str, now: float) -> Deferred[QueueStats]:
        return self._redis.run(_STATS, encode(queue), number(now), convert=_stats)


def _nothing(reply: object) -> None:
    return None


def _message(found: list[Any] | None) -> Message | None:
    if found is None:
        return None
    message_id, payload, enqueued_at, deliveries = found
    return Message(int(message_id), payload, float(enqueued_at), int(deliveries))


def _depths(found: list[Any]) -> list[tuple[str, int]]:
    return sorted((decode(name), int(depth)) for name, depth in zip(found[::2], found[1::2], strict=True))


def _stats(found: list[Any]) -> QueueStats:
    ready, delayed, reserved, oldest, counted = found
    counters = {name: int(value or 0) for name, value in zip(COUNTERS, counted, strict=True)}
    return QueueStats(int(ready), int(delayed), int(reserved), float(oldest) if oldest is not None else None, counters)
