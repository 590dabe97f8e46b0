# -*- test-case-name: tests.test_wire -*-
"""The wire format shared by both transports: requests in, replies and events out.

A request line is ``[#tag ]VERB[ arguments]``; when its last argument is exactly
``{N}`` the N bytes that follow the line are that argument (a *literal*). A
reply is ``OK[ text]``, ``ERR code text`` or ``DATA n[ label]`` + n bytes + CRLF,
prefixed by ``#tag `` when the request had one. Events are lines starting
with ``* ``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

CRLF = b"\r\n"

_TAG = re.compile(rb"[A-Za-z0-9]{1,16}\Z")
_LITERAL = re.compile(rb" \{([0-9]+)\}\Z")
LITERAL_SIZE_CEILING = 10**20
"""Literal sizes above this are not converted: they exceed every limit anyway."""


class HugeSize(int):
    """A literal size too large to convert (CPython refuses int() of over 4,300 digits, and none is needed).

    It compares as LITERAL_SIZE_CEILING + 1, so it is over every limit, and
    reads ``more than 10^20`` in error texts instead of thousands of digits.
    """

    def __new__(cls) -> HugeSize:
        return super().__new__(cls, LITERAL_SIZE_CEILING + 1)

    def __str__(self) -> str:
        return "more than 10^20"

    def __repr__(self) -> str:
        return "HugeSize()"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def literal_size(digits: bytes) -> int:
    """The value of a literal marker's digits, without converting thousands of them."""
    significant = digits.lstrip(b"0")
    if len(significant) > 21:  # 10^20 has 21 digits
        return HugeSize()
    size = int(significant or b"0")
    return HugeSize() if size > LITERAL_SIZE_CEILING else size


@dataclass(slots=True)
class Request:
    """One parsed command line (plus its literal once that has been read)."""

    verb: str
    """The verb, upper-cased; non-ASCII bytes become U+FFFD so they match nothing."""
    args: bytes
    """Everything after the single space that follows the verb (literal marker removed)."""
    tag: bytes | None = None
    bad_tag: bool = False
    """The line started with ``#`` but the tag was not 1-16 of ``A-Za-z0-9``."""
    literal_size: int | None = None
    literal: bytes | None = None


def parse_request(line: bytes) -> Request | None:
    """Split a command line (without its line ending) into a Request.

    Returns None for a blank line, which is not a command and gets no reply.
    Spaces before the tag and before the verb are ignored (`` PING`` is PING).
    Never raises, whatever the bytes.
    """
    if line[:1] == b" ":
        line = line.lstrip(b" ")
    if not line:
        return None
    tag = None
    bad_tag = False
    if line[0] == 35:  # "#"
        candidate, _, line = line[1:].partition(b" ")
        if _TAG.match(candidate):
            tag = candidate
        else:
            bad_tag = True
        line = line.lstrip(b" ")
    size = None
    if line.endswith(b"}"):  # only then can it end with a literal marker
        marker = _LITERAL.search(line)
        if marker:
            size = literal_size(marker.group(1))
            line = line[: marker.start()]
    raw_verb, _, args = line.partition(b" ")
    verb = _VERBS.get(raw_verb)
    if verb is None:
        verb = raw_verb.decode("ascii", "replace").upper()
        if len(_VERBS) < _MAX_VERBS and len(raw_verb) <= 16:
            _VERBS[raw_verb] = verb
    return Request(verb, args, tag, bad_tag, size)


_VERBS: dict[bytes, str] = {}
"""Verbs as sent, upper-cased: a cache, since clients send the same few verbs over and over."""
_MAX_VERBS = 4096
"""Entries kept at most, so random garbage cannot grow the cache without bound."""


def printable(raw: bytes | str, limit: int = 40) -> str:
    """Render untrusted bytes for an error text: printable ASCII kept, the rest escaped."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "replace")
    clipped = raw[:limit]
    text = "".join(chr(b) if 32 <= b < 127 else f"\\x{b:02x}" for b in clipped)
    return text + ("..." if len(raw) > limit else "")


def host_port(peer: tuple[str, int]) -> str:
    """``host:port`` for log lines, an IPv6 host in brackets."""
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _line(tag: bytes | None, body: bytes) -> bytes:
    return (b"#" + tag + b" " + body + CRLF) if tag else body + CRLF


class Reply:
    """Base of the three reply forms.

    Replies are values, never changed once made. They are not frozen dataclasses
    only because one is built for every command and a frozen one costs three
    times as much to build.
    """

    closes: bool = False
    """Whether the connection / UDP session ends once this reply is sent."""

    def encode(self, tag: bytes | None = None) -> bytes:
        """The reply's exact bytes on the wire."""
        raise NotImplementedError


@dataclass(slots=True)
class Ok(Reply):
    """``OK[ text]``: success on one line."""

    text: str = ""
    closes: bool = False

    def encode(self, tag: bytes | None = None) -> bytes:
        if tag:
            return _line(tag, b"OK " + self.text.encode() if self.text else b"OK")
        return b"OK %b\r\n" % self.text.encode() if self.text else b"OK\r\n"


@dataclass(slots=True)
class Err(Reply):
    """``ERR code text``: failure; the text is for humans."""

    code: str
    text: str
    closes: bool = False

    def encode(self, tag: bytes | None = None) -> bytes:
        text = self.text.replace("\r", " ").replace("\n", " ")
        return _line(tag, f"ERR {self.code} {text}".encode())


@dataclass(slots=True)
class Data(Reply):
    """``DATA n[ label]`` + payload + CRLF: success carrying bytes held in memory."""

    payload: bytes
    label: str = ""
    undelivered: Callable[[], object] | None = None
    """Called by a front end that cannot deliver the reply (too big for its datagrams): what the
    command took for it is given back (a received message returns to the head of its queue)."""

    def header(self, tag: bytes | None = None) -> bytes:
        """The ``DATA`` line that precedes the payload."""
        return data_header(len(self.payload), self.label, tag)

    def encode(self, tag: bytes | None = None) -> bytes:
        if tag or not self.label:
            return self.header(tag) + self.payload + CRLF
        return b"DATA %d %b\r\n%b\r\n" % (len(self.payload), self.label.encode(), self.payload)


class BodySource(Protocol):
    """A payload produced piece by piece (a file, generated bytes)."""

    def read(self, size: int) -> bytes:
        """Return up to ``size`` more bytes; b"" only when exhausted."""

    def close(self) -> None:
        """Release what the source holds; called once, whether finished or not."""


@dataclass(slots=True)
class StreamedData(Reply):
    """A DATA reply whose payload is pulled from a source as the client reads it."""

    size: int
    label: str
    source: BodySource

    def header(self, tag: bytes | None = None) -> bytes:
        """The ``DATA`` line that precedes the payload."""
        return data_header(self.size, self.label, tag)

    def encode(self, tag: bytes | None = None) -> bytes:
        """Materialise the whole reply (only for payloads known to be small)."""
        try:
            payload = self.source.read(self.size)
        finally:
            self.source.close()
        return self.header(tag) + payload + CRLF


FULL = Err("full", "Server is full, try again later.")
"""The refusal when ``--max-clients`` is reached (the original's text)."""


def data_header(size: int, label: str, tag: bytes | None) -> bytes:
    """The header line of a DATA reply."""
    body = f"DATA {size} {label}" if label else f"DATA {size}"
    return _line(tag, body.encode())


def listing(lines: list[str]) -> bytes:
    """The payload of a listing: each line ended by CRLF."""
    return "".join(line + "\r\n" for line in lines).encode()
