# -*- test-case-name: tests.test_transfer -*-
"""The words a UDP request may start with, and the messages of a reliable transfer.

A UDP request may start, in this order, with ``!<cookie>`` (address
validation, :mod:`msgsvc.transports.udp_safety`), ``&<key>`` (the secret that
binds a logged-in session to the client that chose it) and ``%<id>`` (the
client speaks transfers: a reply larger than :data:`BLOCK` bytes comes as
transfer ``id``, and a literal announced but left out of the datagram goes
up as one). The messages of transfer ``id``, in either direction::

    %<id> B <seq> <total>\\n<payload>   block seq: bytes seq*BLOCK .. of total
    %<id> A <next>                     every block before next has arrived
    %<id> X <reason>                   the transfer is given up

This module only reads and writes those words; the state machines are in
:mod:`msgsvc.protocol.reliable`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "BLOCK",
    "Abort",
    "Ack",
    "Block",
    "Prefixes",
    "abort",
    "ack",
    "block",
    "block_count",
    "is_message",
    "parse_message",
    "split_prefixes",
]

BLOCK = 1200
"""Most payload bytes in one block: safely under any path's MTU (RFC 8085 3.2)."""
MAX_TOTAL = 1 << 40
"""A total above this is malformed: no transfer is that large."""

_ID = re.compile(rb"[0-9A-Za-z_-]{1,16}\Z")
_KEY = re.compile(rb"[0-9A-Za-z_-]{8,64}\Z")
_NUMBER = re.compile(rb"[0-9]{1,15}\Z")


class Malformed(ValueError):
    """A prefix or a transfer message that does not follow the grammar: the text says what is wrong."""


@dataclass(frozen=True, slots=True)
class Prefixes:
    """What a request's leading words said, and the request that follows them."""

    key: bytes | None
    transfer: bytes | None
    rest: bytes


@dataclass(frozen=True, slots=True)
class Block:
    """Block ``seq`` of a transfer of ``total`` bytes."""

    transfer: bytes
    seq: int
    total: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Ack:
    """Every block before ``next`` has arrived."""

    transfer: bytes
    next: int


@dataclass(frozen=True, slots=True)
class Abort:
    """The other side gave the transfer up."""

    transfer: bytes
    reason: str


def _word(data: bytes, sigil: bytes, pattern: re.Pattern[bytes], what: str) -> tuple[bytes | None, bytes]:
    if not data.startswith(sigil):
        return None, data
    word, _, rest = data[1:].partition(b" ")
    if not pattern.match(word):
        raise Malformed(what)
    return word, rest


def split_prefixes(datagram: bytes) -> Prefixes:
    """The ``&<key>`` and ``%<id>`` a datagram (its cookie taken off) starts with, if any.

    Raises :class:`Malformed` for a key or id that is not well formed.
    """
    key, rest = _word(datagram, b"&", _KEY, "a session key is 8 to 64 letters, digits, '-' or '_'")
    transfer, rest = _word(rest, b"%", _ID, "a transfer id is 1 to 16 letters, digits, '-' or '_'")
    return Prefixes(key, transfer, rest)


def parse_message(transfer: bytes, rest: bytes) -> Block | Ack | Abort | None:
    """The transfer message ``rest`` is (what followed ``%<id> ``), or None when it is a request.

    Raises :class:`Malformed` for a block or ack that is not well formed.
    """
    kind = rest[:2]
    if kind == b"B ":
        head, newline, payload = rest[2:].partition(b"\n")
        words = head.rstrip(b"\r").split(b" ")
        if not newline or len(words) != 2 or not all(_NUMBER.match(word) for word in words):
            raise Malformed("a block is %<id> B <seq> <total>, a line feed, then the payload")
        seq, total = int(words[0]), int(words[1])
        if total > MAX_TOTAL or len(payload) != block_size(seq, total):
            raise Malformed(f"block {seq} of a {total}-byte transfer cannot hold {len(payload)} bytes")
        return Block(transfer, seq, total, payload)
    if kind == b"A ":
        number = rest[2:].rstrip(b"\r\n")
        if not _NUMBER.match(number):
            raise Malformed("an acknowledgement is %<id> A <next>")
        return Ack(transfer, int(number))
    if kind == b"X " or rest.rstrip(b"\r\n") == b"X":
        return Abort(transfer, rest[2:].rstrip(b"\r\n").decode("utf-8", "replace"))
    return None


def is_message(datagram: bytes) -> bool:
    """Whether a datagram (its cookie taken off) looks like a transfer message rather than a request."""
    if not datagram.startswith(b"%"):
        return False
    kind = datagram.partition(b" ")[2][:2]
    return kind in (b"A ", b"B ", b"X ", b"X", b"X\r", b"X\n")


def block_count(total: int) -> int:
    """How many blocks carry ``total`` bytes (one, empty, for none)."""
    return max(1, -(-total // BLOCK))


def block_size(seq: int, total: int) -> int:
    """The payload size of block ``seq`` of ``total`` bytes; -1 for a block past the end."""
    if seq >= block_count(total):
        return -1
    return min(BLOCK, total - seq * BLOCK)


def block(transfer: bytes, seq: int, total: int, payload: bytes) -> bytes:
    """The datagram of one block."""
    return b"%%%s B %d %d\n%s" % (transfer, seq, total, payload)


def ack(transfer: bytes, next_seq: int) -> bytes:
    """The datagram acknowledging every block before ``next_seq``."""
    return b"%%%s A %d\r\n" % (transfer, next_seq)


def abort(transfer: bytes, reason: str) -> bytes:
    """The datagram giving transfer ``transfer`` up."""
    return b"%%%s X %s\r\n" % (transfer, reason.encode())
