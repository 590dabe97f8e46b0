# -*- test-case-name: tests.test_forum,tests.test_forum_files -*-
"""Uploaded files as blobs in one directory, written piece by piece and never held whole in memory.

A blob is named by a random key the server makes up (``<32 hex>.blob``), never
by anything a client sent, so no file or thread name can reach the file
system. An upload is written to a ``.part`` file and moved into place only
once it is complete; a durable store keeps its blobs in a directory beside
its database and calls :meth:`FileStore.sweep` at start to drop the parts a
crash left behind. ``FileStore(None)`` is the in-memory store's: a temporary
directory made on first use and removed by :meth:`close` (or at exit).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Collection
from typing import BinaryIO
from uuid import uuid4

from zope.interface import implementer

from msgsvc.store.interfaces import IBlobStore
from msgsvc.store.parts import PartFile

_KEY = re.compile(r"[0-9a-f]{32}\Z")


@implementer(IBlobStore)
class FileStore:
    """Blobs in a directory, by server-made keys (an IBlobStore whose ``keep`` blocks while it syncs)."""

    blocking = True

    def __init__(self, directory: str | None, durable: bool = False) -> None:
        self._directory = directory
        self._durable = durable
        """Sync each blob and its directory entry to disk before the upload is recorded."""
        self._finalizer: weakref.finalize | None = None

    @property
    def directory(self) -> str:
        """The directory, made on first use."""
        if self._directory is None:
            self._directory = tempfile.mkdtemp(prefix="msgsvc-files-")
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._directory, ignore_errors=True)
        elif not os.path.isdir(self._directory):
            os.makedirs(self._directory, exist_ok=True)
        return self._directory

    def begin(self) -> PartFile:
        """A new, empty part file for an upload."""
        fd, path = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self.directory)
        return PartFile(path, os.fdopen(fd, "wb"))

    def keep(self, part: PartFile) -> str:
        """Move a complete part into place; returns its new blob key."""
        part.close()
        if part.error is not None:
            part.discard()
            raise part.error
        key = uuid4().hex
        if self._durable:
            _fsync(part.path)
        os.replace(part.path, self._path(key))
        if self._durable:
            _fsync(self.directory)
        return key

    def open(self, key: str) -> tuple[int, BinaryIO]:
        """The blob's size and an open file to read it from (the caller closes it)."""
        stream = open(self._path(key), "rb")
        return os.fstat(stream.fileno()).st_size, stream

    def delete(self, key: str) -> None:
        """Remove a blob; one already gone is fine."""
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass

    def sweep(self, keep: Collection[str] | None = None) -> int:
        """Delete what an interrupted run left behind; returns how many files.

        That is every ``.part`` file and, when ``keep`` (the keys the store refers
        to) is given, every blob not among them.
        """
        if self._directory is None or not os.path.isdir(self._directory):
            return 0
        leftovers = [
            name
            for name in os.listdir(self._directory)
            if name.endswith(".part") or (keep is not None and name.endswith(".blob") and name[:-5] not in keep)
        ]
        for name in leftovers:
            os.unlink(os.path.join(self._directory, name))
        return len(leftovers)

    def close(self) -> None:
        """Remove the directory if it is a temporary one."""
        if self._finalizer is not None:
            self._finalizer()

    def _path(self, key: str) -> str:
        if not _KEY.match(key):
            raise ValueError(f"not a blob key: {key!r}")
        return os.path.join(self.directory, key + ".blob")


def _fsync(path: str) -> None:
    """Force a file's (or a directory's) contents to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
