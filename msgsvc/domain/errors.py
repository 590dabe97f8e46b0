"""The ways a command can fail that the domain expects: each becomes ``ERR code text`` in dispatch."""

from __future__ import annotations


class Refused(Exception):
    """A command failed in an expected way; the command table turns it into ``ERR code text``."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(code, text)
        self.code = code
        self.text = text
