# -*- test-case-name: tests.test_redis_store -*-
"""The Redis forum store: threads, their numbered messages and their uploads.

``msgsvc:forum:threads`` is a ZSET of titles by thread id (so oldest first),
ids from ``INCR msgsvc:forum:ids``; ``msgsvc:forum:thread:TITLE`` a HASH
(``id``, ``creator``, ``posts`` how many messages); ``msgsvc:forum:entries:ID``
the LIST of the thread's entries in posting order, each ``P<user>\\0<text>``
for a message or ``U<user>\\0<file>\\0<blob>`` for an upload;
``msgsvc:forum:files:ID`` a HASH from file name to its upload entry.
Every check-and-change is one Lua script answering ``{code, ...}``, a
negative code naming the ForumError.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from msgsvc.store.interfaces import FileExists, ForumError, IForumStore, NoMessage, NoThread, NotOwner, Post, Upload
from msgsvc.store.redis_connection import Redis, Script, decode, encode

_THREAD = """
local P = 'msgsvc:forum:'
local thread = P..'thread:'..ARGV[1]
local id = redis.call('HGET', thread, 'id')
if not id then return {-1} end
local entries, files = P..'entries:'..id, P..'files:'..id
"""

_OWN_POST = (
    _THREAD
    + """
local number, user, index, seen = tonumber(ARGV[2]), ARGV[3], nil, 0
for i, entry in ipairs(redis.call('LRANGE', entries, 0, -1)) do
  if string.sub(entry, 1, 1) == 'P' then
    seen = seen + 1
    if seen == number then
      if string.sub(entry, 2, string.find(entry, '\\0', 2, true) - 1) ~= user then return {-3} end
      index = i - 1
      break
    end
  end
end
if not index then return {-2} end
"""
)

_CREATE = Script(
    """
local P = 'msgsvc:forum:'
local thread = P..'thread:'..ARGV[1]
if redis.call('EXISTS', thread) == 1 then return 0 end
local id = redis.call('INCR', P..'ids')
redis.call('HSET', thread, 'id', id, 'creator', ARGV[2], 'posts', 0)
redis.call('ZADD', P..'threads', id, ARGV[1])
return 1
"""
)

_ADD_POST = Script(
    _THREAD
    + """
redis.call('RPUSH', entries, ARGV[2])
return {redis.call('HINCRBY', thread, 'posts', 1)}
"""
)

_EDIT_POST = Script(_OWN_POST + "redis.call('LSET', entries, index, ARGV[4])\nreturn {0}\n")

_DELETE_POST = Script(
    _OWN_POST
    + """
redis.call('LSET', entries, index, '')
redis.call('LREM', entries, 1, '')
redis.call('HINCRBY', thread, 'posts', -1)
return {0}
"""
)

_ENTRIES = Script(
    _THREAD + "local found = redis.call('LRANGE', entries, 0, -1)\ntable.insert(found, 1, 0)\nreturn found\n"
)

_ADD_UPLOAD = Script(
    _THREAD
    + """
if redis.call('HSETNX', files, ARGV[2], ARGV[3]) == 0 then return {-4} end
redis.call('RPUSH', entries, ARGV[3])
return {0}
"""
)

_FIND_UPLOAD = Script(_THREAD + "return {0, redis.call('HGET', files, ARGV[2])}\n")

_REMOVE_THREAD = Script(
    _THREAD
    + """
if redis.call('HGET', thread, 'creator') ~= ARGV[2] then return {-3} end
local uploads = redis.call('HVALS', files)
redis.call('DEL', thread, entries, files)
redis.call('ZREM', P..'threads', ARGV[1])
table.insert(uploads, 1, 0)
return uploads
"""
)

_ERRORS: dict[int, type[ForumError]] = {-2: NoMessage, -3: NotOwner, -4: FileExists}


@implementer(IForumStore)
class RedisForumStore:
    """Threads, messages and uploads in Redis, each check-and-change one Lua script."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def create_thread(self, title: str, creator: str) -> Deferred[bool]:
        created = self._redis.run(_CREATE, encode(title), encode(creator))
        return created.addCallback(lambda count: count == 1)

    def titles(self) -> Deferred[list[str]]:
        found = self._redis.command("ZRANGE", "msgsvc:forum:threads", 0, -1)
        return found.addCallback(lambda titles: [decode(title) for title in titles])

    def add_post(self, title: str, user: str, text: str) -> Deferred[int]:
        added = self._run(_ADD_POST, title, title, _post(user, text))
        return added.addCallback(lambda found: int(found[0]))

    def edit_post(self, title: str, number: int, user: str, text: str) -> Deferred[None]:
        edited = self._run(_EDIT_POST, number, title, str(number), encode(user), _post(user, text))
        return edited.addCallback(lambda _: None)

    def delete_post(self, title: str, number: int, user: str) -> Deferred[None]:
        return self._run(_DELETE_POST, number, title, str(number), encode(user)).addCallback(lambda _: None)

    def entries(self, title: str) -> Deferred[list[Post | Upload]]:
        return self._run(_ENTRIES, title, title).addCallback(lambda found: _entries(found[1:]))

    def add_upload(self, title: str, upload: Upload) -> Deferred[None]:
        entry = b"U" + encode(f"{upload.user}\0{upload.file}\0{upload.blob}")
        added = self._run(_ADD_UPLOAD, upload.file, title, encode(upload.file), entry)
        return added.addCallback(lambda _: None)

    def find_upload(self, title: str, file: str) -> Deferred[Upload | None]:
        found = self._run(_FIND_UPLOAD, title, title, encode(file))
        return found.addCallback(lambda reply: _upload(reply[1]) if len(reply) > 1 and reply[1] else None)

    def remove_thread(self, title: str, user: str) -> Deferred[list[str]]:
        removed = self._run(_REMOVE_THREAD, title, title, encode(user))
        return removed.addCallback(lambda found: [_upload(entry).blob for entry in found[1:]])

    def _run(self, script: Script, subject: object, title: str, *args: str | bytes) -> Deferred[list[Any]]:
        """Run a forum script; a negative code fails the answer with its ForumError (NoThread about the title)."""
        return self._redis.run(script, encode(title), *args).addCallback(_checked, title, subject)


def _checked(found: list[Any], title: str, subject: object) -> list[Any]:
    code = int(found[0])
    if code == -1:
        raise NoThread(title)
    if code < 0:
        raise _ERRORS[code](subject)
    return found


def _post(user: str, text: str) -> bytes:
    return b"P" + encode(f"{user}\0{text}")


def _upload(entry: bytes) -> Upload:
    """An upload from its entry: ``U<user>\\0<file>\\0<blob>`` (the blob key has no NUL; the file name might)."""
    user, rest = decode(entry[1:]).split("\0", 1)
    file, blob = rest.rsplit("\0", 1)
    return Upload(user, file, blob)


def _entries(found: list[bytes]) -> list[Post | Upload]:
    entries: list[Post | Upload] = []
    posts = 0
    for entry in found:
        if entry.startswith(b"P"):
            user, text = decode(entry[1:]).split("\0", 1)
            posts += 1
            entries.append(Post(posts, user, text))
        else:
            entries.append(_upload(entry))
    return entries
