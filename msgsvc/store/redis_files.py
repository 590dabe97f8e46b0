# -*- test-case-name: tests.test_redis_store -*-
"""Uploaded files in Redis, in chunks of :data:`CHUNK` bytes, so every process on the Redis serves them.

An upload streams into a local part file (as with the other stores), then
``keep`` copies it to Redis one chunk per command into the LIST
``msgsvc:blobpart:KEY`` (which expires if the copy is never finished) and a
script renames it ``msgsvc:blob:KEY`` and records its size in the HASH
``msgsvc:blobs``, all at once. ``open`` copies a blob, one chunk per
command, into a local temporary file and answers that: the transports read
their replies' bodies synchronously, so the bytes are local before the reply
starts. No command carries more than one chunk, and no process holds more
than one chunk of a file in memory.
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import BinaryIO
from uuid import uuid4

from twisted.internet.defer import Deferred
from zope.interface import implementer

from msgsvc.store.blobs import FileStore
from msgsvc.store.interfaces import IBlobStore
from msgsvc.store.parts import PartFile
from msgsvc.store.redis_connection import Redis, Script

CHUNK = 256 * 1024
PART_EXPIRY = 3600
"""Seconds an unfinished copy (its process died) stays in Redis."""
BLOBS = "msgsvc:blobs"

_KEY = re.compile(r"[0-9a-f]{32}\Z")

_FINISH = Script(
    """
local part, blob = 'msgsvc:blobpart:'..ARGV[1], 'msgsvc:blob:'..ARGV[1]
if redis.call('EXISTS', part) == 1 then
  redis.call('RENAME', part, blob)
  redis.call('PERSIST', blob)
end
redis.call('HSET', 'msgsvc:blobs', ARGV[1], ARGV[2])
return 1
"""
)

_DELETE = Script(
    """
redis.call('DEL', 'msgsvc:blob:'..ARGV[1], 'msgsvc:blobpart:'..ARGV[1])
redis.call('HDEL', 'msgsvc:blobs', ARGV[1])
return 1
"""
)


@implementer(IBlobStore)
class RedisBlobStore:
    """Blobs as lists of chunks in Redis; parts and downloads pass through this process's temporary directory."""

    blocking = False

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._local = FileStore(None)

    @property
    def directory(self) -> str:
        """This process's temporary directory, where parts and downloads pass through."""
        return self._local.directory

    def begin(self) -> PartFile:
        return self._local.begin()

    def keep(self, part: PartFile) -> Deferred[str]:
        return Deferred.fromCoroutine(self._keep(part))

    async def _keep(self, part: PartFile) -> str:
        part.close()
        if part.error is not None:
            part.discard()
            raise part.error
        key = uuid4().hex
        try:
            with open(part.path, "rb") as source:
                while chunk := source.read(CHUNK):
                    if await self._redis.command("RPUSH", f"msgsvc:blobpart:{key}", chunk) == 1:
                        await self._redis.command("EXPIRE", f"msgsvc:blobpart:{key}", PART_EXPIRY)
            await self._redis.run(_FINISH, key, str(part.size))
        finally:
            part.discard()  # a copy left unfinished in Redis expires
        return key

    def open(self, key: str) -> Deferred[tuple[int, BinaryIO]]:
        if not _KEY.match(key):
            raise ValueError(f"not a blob key: {key!r}")
        return Deferred.fromCoroutine(self._open(key))

    async def _open(self, key: str) -> tuple[int, BinaryIO]:
        if await self._redis.command("HEXISTS", BLOBS, key) != 1:
            raise FileNotFoundError(f"no blob {key} in Redis")
        chunks = await self._redis.command("LLEN", f"msgsvc:blob:{key}")
        copy = tempfile.TemporaryFile(dir=self._local.directory)
        try:
            for index in range(chunks):
                chunk = await self._redis.command("LINDEX", f"msgsvc:blob:{key}", index)
                if chunk is None:
                    raise FileNotFoundError(f"blob {key} lost its chunk {index}")
                copy.write(chunk)
            copy.seek(0)
        except BaseException:
            copy.close()
            raise
        return os.fstat(copy.fileno()).st_size, copy

    def delete(self, key: str) -> Deferred[None]:
        return self._redis.run(_DELETE, key).addCallback(lambda _: None)

    def close(self) -> None:
        """Remove the local temporary directory."""
        self._local.close()
