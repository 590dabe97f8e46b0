# -*- test-case-name: tests.test_client -*-
"""Reading what a msgsvc server sends: replies and events, from a stream or a datagram."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TAGGED = re.compile(rb"#([A-Za-z0-9]{1,16}) ")


@dataclass(frozen=True)
class Reply:
    """One reply: ``kind`` is OK, ERR or DATA."""

    kind: str
    text: str = ""
    """OK: the text; ERR: the human text; DATA: the label."""
    code: str = ""
    """ERR only: the error code."""
    payload: bytes = b""
    """DATA only: the payload bytes."""
    tag: str | None = None


@dataclass(frozen=True)
class Event:
    """An unsolicited ``* NAME args`` line."""

    name: str
    args: str


class ServerError(Exception):
    """The server answered ``ERR code text``."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(f"{reply.code}: {reply.text}")
        self.reply = reply
        self.code = reply.code
        self.text = reply.text


class ProtocolViolation(Exception):
    """The server sent something that is not msgsvc's wire format."""


class ReplyParser:
    """Splits the server's byte stream into Reply and Event objects."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._data: tuple[int, str, str | None] | None = None

    def feed(self, data: bytes) -> list[Reply | Event]:
        """Add received bytes; return every reply and event now complete."""
        self._buffer += data
        parsed: list[Reply | Event] = []
        while True:
            if self._data is not None:
                size, label, tag = self._data
                if len(self._buffer) < size + 2:
                    return parsed
                payload = bytes(self._buffer[:size])
                del self._buffer[: size + 2]
                self._data = None
                parsed.append(Reply("DATA", label, payload=payload, tag=tag))
                continue
            end = self._buffer.find(b"\n")
            if end < 0:
                return parsed
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            item = self._line(line)
            if item is not None:
                parsed.append(item)

    def _line(self, line: bytes) -> Reply | Event | None:
        if line.startswith(b"* "):
            name, _, args = line[2:].decode("utf-8", "replace").partition(" ")
            return Event(name, args)
        tag = None
        tagged = _TAGGED.match(line)
        if tagged:
            tag = tagged.group(1).decode()
            line = line[tagged.end() :]
        text = line.decode("utf-8", "replace")
        kind, _, rest = text.partition(" ")
        if kind == "OK":
            return Reply("OK", rest, tag=tag)
        if kind == "ERR":
            code, _, human = rest.partition(" ")
            return Reply("ERR", human, code=code, tag=tag)
        if kind == "DATA":
            size, _, label = rest.partition(" ")
            if not size.isdigit():
                raise ProtocolViolation(f"bad DATA header: {text!r}")
            self._data = (int(size), label, tag)
            return None
        raise ProtocolViolation(f"unexpected line from server: {text!r}")
