# -*- test-case-name: tests.test_redis_store -*-
"""The Redis microblog and account stores.

Microblog: ``msgsvc:tweet:ID`` a HASH (``a`` author, ``t`` text), ids from
``INCR msgsvc:tweet:ids``, ``msgsvc:tweet:last`` the newest id and
``msgsvc:tag:TAG`` a LIST of the ids carrying the tag, oldest first. A post is
one Lua script, so the tag lists stay in id order whichever process posts.

Accounts: the HASH ``msgsvc:accounts`` from each case-folded name to the name
as registered and its password hash (``NAME\\nHASH``, the hash as the other
stores keep it); HSETNX adds an account only if the name is free.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from msgsvc.store.interfaces import Account, IAccountStore, ITweetStore, Tweet
from msgsvc.store.redis_connection import Redis, Script, decode, encode

ACCOUNTS = "msgsvc:accounts"

_POST = Script(
    """
local P = 'msgsvc:'
local id = redis.call('INCR', P..'tweet:ids')
redis.call('HSET', P..'tweet:'..id, 'a', ARGV[1], 't', ARGV[2])
for i = 3, #ARGV do redis.call('RPUSH', P..'tag:'..ARGV[i], id) end
redis.call('SET', P..'tweet:last', id)
return id
"""
)

_LAST = Script(
    """
local P = 'msgsvc:'
local id = redis.call('GET', P..'tweet:last')
if not id then return false end
local tweet = redis.call('HMGET', P..'tweet:'..id, 'a', 't')
return {id, tweet[1], tweet[2]}
"""
)

_TAGGED = Script(
    """
local P, found = 'msgsvc:', {}
local ids = redis.call('LRANGE', P..'tag:'..ARGV[1], -tonumber(ARGV[2]), -1)
for i = #ids, 1, -1 do
  local tweet = redis.call('HMGET', P..'tweet:'..ids[i], 'a', 't')
  found[#found + 1] = ids[i]
  found[#found + 1] = tweet[1]
  found[#found + 1] = tweet[2]
end
return found
"""
)


@implementer(ITweetStore)
class RedisTweetStore:
    """Microblog messages and their hashtag index in Redis."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def post(self, author: str, text: str, tags: frozenset[str]) -> Deferred[int]:
        posted = self._redis.run(_POST, encode(author), encode(text), *(encode(tag) for tag in sorted(tags)))
        return posted.addCallback(int)

    def last(self) -> Deferred[Tweet | None]:
        return self._redis.run(_LAST).addCallback(lambda found: _tweets(found)[0] if found else None)

    def tagged(self, tag: str, limit: int) -> Deferred[list[Tweet]]:
        if limit <= 0:
            return succeed([])
        return self._redis.run(_TAGGED, encode(tag), str(limit)).addCallback(_tweets)


def _tweets(found: list[Any]) -> list[Tweet]:
    """Tweets from a flat reply: id, author, text, id, author, text..."""
    return [Tweet(int(found[i]), decode(found[i + 1]), decode(found[i + 2])) for i in range(0, len(found), 3)]


@implementer(IAccountStore)
class RedisAccountStore:
    """Accounts in one Redis HASH keyed by the case-folded name."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def get_account(self, name: str) -> Deferred[Account | None]:
        return self._redis.command("HGET", ACCOUNTS, encode(name.casefold())).addCallback(_account)

    def add_account(self, account: Account) -> Deferred[bool]:
        record = encode(f"{account.name}\n{account.password_hash}")
        added = self._redis.command("HSETNX", ACCOUNTS, encode(account.name.casefold()), record)
        return added.addCallback(lambda count: count == 1)


def _account(record: bytes | None) -> Account | None:
    if record is None:
        return None
    name, _, password_hash = decode(record).rpartition("\n")
    return Account(name, password_hash)
