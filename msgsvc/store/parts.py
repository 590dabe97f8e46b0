# -*- test-case-name: tests.test_forum_files -*-
"""An upload being written to a local part file: what every blob store's ``begin`` hands out."""

from __future__ import annotations

import os
from typing import BinaryIO


class PartFile:
    """An upload being written to a ``.part`` file in the store's directory."""

    def __init__(self, path: str, stream: BinaryIO) -> None:
        self.path = path
        self.size = 0
        self.error: OSError | None = None
        """The first write error (disk full...); later writes are dropped."""
        self._stream: BinaryIO | None = stream

    def write(self, data: bytes) -> None:
        """Append bytes, straight to the file."""
        if self._stream is None or self.error is not None:
            return
        try:
            self._stream.write(data)
        except OSError as error:
            self.error = error
            return
        self.size += len(data)

    def close(self) -> None:
        """Close the file (flushing it); the part stays on disk until kept or discarded."""
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except OSError as error:
                self.error = self.error or error

    def discard(self) -> None:
        """Close and delete the part."""
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
