# -*- test-case-name: tests.test_chat_files -*-
"""Files served by LIST and GET: regular files directly inside one directory, nothing else."""

from __future__ import annotations

import os
import re
import stat
from typing import BinaryIO

from msgsvc.domain.errors import NoFile

_SERVABLE_NAME = re.compile(r"[!-~]{1,255}\Z")
NO_FILE = "File path is invalid"


class FileSource:
    """A DATA payload read from an open file as the client takes it."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file

    def read(self, size: int) -> bytes:
        return self._file.read(size)

    def close(self) -> None:
        self._file.close()


class FileShelf:
    """The ``--files`` directory as clients may see it."""

    def __init__(self, directory: str) -> None:
        self.directory = os.path.realpath(directory)

    def listing(self) -> list[tuple[str, int]]:
        """Every servable file with its size, sorted by name."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        found = []
        for name in names:
            path = self._path(name)
            if path is not None:
                found.append((name, os.stat(path).st_size))
        return sorted(found)

    def open(self, name: str) -> tuple[int, FileSource]:
        """The file's size and a source for its bytes; NoFile for anything not servable."""
        path = self._path(name)
        if path is None:
            raise NoFile(NO_FILE)
        try:
            file = open(path, "rb")
        except OSError:
            raise NoFile(NO_FILE) from None
        size = os.fstat(file.fileno()).st_size
        return size, FileSource(file)

    def _path(self, name: str) -> str | None:
        """The real path of a servable file, or None.

        Servable: a plain name (printable ASCII, no space, slash or backslash, not hidden)
        whose real path is a regular file directly inside the directory, so links that lead
        elsewhere, subdirectories and special files are never served.
        """
        if not _SERVABLE_NAME.match(name) or "/" in name or "\\" in name or name.startswith("."):
            return None
        path = os.path.realpath(os.path.join(self.directory, name))
        if os.path.dirname(path) != self.directory:
            return None
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return None
        return path if stat.S_ISREG(mode) else None
