# -*- test-case-name: tests.test_cluster -*-
"""Nodes on one Redis: ids, leases, reaping the dead, claims on names and logins, the client lists.

Keys: ``msgsvc:node:<id>`` (this node's lease, ``PX`` the lease, renewed every
lease/3, or every second if that is sooner), ``msgsvc:nodes`` (the set of registered nodes), ``msgsvc:names`` and
``msgsvc:logins`` (folded name to ``<node> <holder> <label>``),
``msgsvc:clients:<id>`` (a node's clients: holder to its listing line). The
heartbeat is one script: it renews the lease, and removes every registered
node whose lease key is gone together with its names, logins and clients,
ending the lease of its reservations (the
queue store marks them with the node's id; the next take on the queue puts them
back at the head), answering the names removed (so exactly one node, the first to notice,
announces them) and the other live nodes' client count. Publications go out
on ``msgsvc:events:<db>`` with PUBLISH on the commands' connection and come in on
a connection of their own (``redis_pubsub``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from msgsvc.store.redis_connection import Redis, Script, decode, encode
from msgsvc.store.redis_pubsub import Subscription

log = Logger()


REAP = """
local p = 'msgsvc:'
local function reap(node, reaped)
  for _, q in ipairs(redis.call('SMEMBERS', p .. 'queues')) do  -- its reservations' lease ends now
    for _, id in ipairs(redis.call('ZRANGE', p .. 'reserved:' .. q, 0, -1)) do
      if redis.call('HGET', p .. 'msg:' .. id, 'h') == node then redis.call('ZADD', p .. 'reserved:' .. q, 0, id) end
    end
  end
  redis.call('SREM', p .. 'nodes', node)
  redis.call('DEL', p .. 'clients:' .. node, p .. 'node:' .. node)
  local prefix = node .. ' '
  for _, kind in ipairs({'names', 'logins'}) do
    local all = redis.call('HGETALL', p .. kind)
    for i = 1, #all, 2 do
      if string.sub(all[i + 1], 1, #prefix) == prefix then
        redis.call('HDEL', p .. kind, all[i])
        if kind == 'names' then table.insert(reaped, all[i + 1]) end
      end
    end
  end
end
"""

HEARTBEAT = Script(
    REAP
    + """
local me = ARGV[1]
local lost = 0
if ARGV[3] == '1' and redis.call('SISMEMBER', p .. 'nodes', me) == 0 then lost = 1 end  -- reaped while alive
redis.call('SET', p .. 'node:' .. me, '1', 'PX', ARGV[2])
redis.call('SADD', p .. 'nodes', me)
local reaped, others = {}, 0
for _, node in ipairs(redis.call('SMEMBERS', p .. 'nodes')) do
  if node ~= me then
    if redis.call('EXISTS', p .. 'node:' .. node) == 1 then
      others = others + redis.call('HLEN', p .. 'clients:' .. node)
    else
      reap(node, reaped)
    end
  end
end
return {others, reaped, lost}
"""
)

LEAVE = Script(REAP + "reap(ARGV[1], {}) return 0")

CLAIM = Script(
    """
local key = 'msgsvc:' .. ARGV[1]
local held = redis.call('HGET', key, ARGV[2])
local other = held and string.sub(held, 1, #ARGV[3]) ~= ARGV[3]
if other and ARGV[5] == '' then return 0 end
redis.call('HSET', key, ARGV[2], ARGV[3] .. ARGV[4])
if other and string.sub(held, 1, #ARGV[5]) ~= ARGV[5] then return 2 end
return 1
"""
)
"""Take a key for a holder: 0 if another holds it, else 1; forced (ARGV[5], this node's prefix), 2 if it was
another node's."""

RELEASE = Script(
    """
local key = 'msgsvc:' .. ARGV[1]
local held = redis.call('HGET', key, ARGV[2])
if held and string.sub(held, 1, #ARGV[3]) == ARGV[3] then redis.call('HDEL', key, ARGV[2]) end
return 0
"""
)

CLIENTS = Script(
    """
local out = {}
for _, node in ipairs(redis.call('SMEMBERS', 'msgsvc:nodes')) do
  if redis.call('EXISTS', 'msgsvc:node:' .. node) == 1 then
    local all = redis.call('HGETALL', 'msgsvc:clients:' .. node)
    for i = 2, #all, 2 do table.insert(out, node) table.insert(out, all[i]) end
  end
end
return out
"""
)


COUNT_AGE = 1.0
"""Seconds between heartbeats at most, whatever the lease: the other nodes' client count lags no more."""


class RedisNodeLink:
    """This node's :class:`msgsvc.store.nodes.INodeLink` over the stores' Redis connection."""

    def __init__(self, redis: Redis, clock: IReactorTime) -> None:
        self.node = os.urandom(8).hex()
        self.others = 0
        self._redis = redis
        self._clock = clock
        self._lease = 10.0
        self._reaped: Callable[[list[str]], None] = lambda names: None
        self._lost: Callable[[], None] = lambda: None
        self._joined = False
        """A heartbeat has registered this node (so finding it unregistered means it was reaped)."""
        self._started = False
        self.beat = LoopingCall(self.heartbeat)
        """The heartbeat (tests stop it to let the lease expire)."""
        self.beat.clock = clock
        self.subscription: Subscription | None = None
        self.channel = b"msgsvc:events:%d" % redis.address.db
        """Where nodes publish (PUBLISH reaches every database's subscribers, so the channel names its own)."""

    def start(
        self,
        lease: float,
        heard: Callable[[bytes], None],
        reaped: Callable[[list[str]], None],
        lost: Callable[[], None],
    ) -> None:
        """Register, heartbeat every lease/3 (every second at least) and listen for the other nodes' publications."""
        self._lease, self._reaped, self._lost, self._started = lease, reaped, lost, True
        prefix = encode(self.node) + b" "

        def hear(message: bytes) -> None:
            if not message.startswith(prefix):  # a node does not hear itself
                heard(message.partition(b" ")[2])

        self.subscription = Subscription(self._redis.address, self.channel, hear)
        self.beat.start(min(lease / 3, COUNT_AGE), now=True)

    def heartbeat(self) -> Deferred[None]:
        """Renew the lease; reap the nodes whose lease is gone; count the other nodes' clients."""
        answer = self._redis.run(HEARTBEAT, self.node, int(self._lease * 1000), "1" if self._joined else "0")
        return answer.addCallbacks(self._beaten, self._missed)

    def _beaten(self, reply: list[Any]) -> None:
        others, removed, lost = reply
        self.others = int(others)
        self._joined = True
        if int(lost):
            self._lost()
        if removed:
            self._reaped([decode(value).split(" ", 2)[2] for value in removed])

    def _missed(self, failure: Any) -> None:
        log.warn("node heartbeat failed: {reason}", reason=failure.getErrorMessage(), category="ERROR")

    def stop(self) -> Deferred[None] | None:
        """Stop beating and listening; drop this node's lease, registration, claims and clients (one script)."""
        if self.beat.running:
            self.beat.stop()
        if not self._started:  # never joined (the start-up check opens and closes the stores): no connection
            return None
        self._started = False
        left = self._redis.run(LEAVE, self.node).addBoth(lambda _: None)
        if self.subscription is None:
            return left
        closed, self.subscription = self.subscription.close(), None
        return gatherResults([left, closed]).addBoth(lambda _: None)

    def publish(self, payload: bytes) -> Deferred[object]:
        """Send ``payload`` to every other node."""
        return self._redis.command("PUBLISH", self.channel, encode(self.node) + b" " + payload)

    def claim(self, kind: str, key: str, holder: str, label: str) -> Deferred[bool]:
        """Take ``key`` of ``kind`` for ``holder``; False if another holds it."""
        answer = self._redis.run(CLAIM, kind, encode(key), encode(f"{self.node} {holder} "), encode(label), b"")
        return answer.addCallback(lambda taken: bool(int(taken)))

    def take(self, kind: str, key: str, holder: str, label: str) -> Deferred[bool]:
        """Take ``key`` of ``kind`` for ``holder`` even if another holds it; True if a client of another node did."""
        node = encode(f"{self.node} ")
        answer = self._redis.run(CLAIM, kind, encode(key), node + encode(f"{holder} "), encode(label), node)
        return answer.addCallback(lambda taken: int(taken) == 2)

    def release(self, kind: str, key: str, holder: str) -> Deferred[object]:
        """Free ``key`` if ``holder`` holds it."""
        return self._redis.run(RELEASE, kind, encode(key), encode(f"{self.node} {holder} "))

    def set_client(self, client: str, line: str) -> Deferred[object]:
        """Describe one of this node's clients."""
        return self._redis.command("HSET", f"msgsvc:clients:{self.node}", client, encode(line))

    def drop_client(self, client: str) -> Deferred[object]:
        """One of this node's clients has gone."""
        return self._redis.command("HDEL", f"msgsvc:clients:{self.node}", client)

    def clients(self) -> Deferred[list[tuple[str, str]]]:
        """Every live node's clients as (node, line)."""
        answer = self._redis.run(CLIENTS)
        return answer.addCallback(lambda flat: [(decode(flat[i]), decode(flat[i + 1])) for i in range(0, len(flat), 2)])
