# -*- test-case-name: tests.test_tcp,tests.test_tcp_literals,tests.test_tcp_flow,tests.test_udp -*-
"""Framing limits shared by every front end, and their error texts, written once.

A stream front end (TCP, TLS) reads a command line, then the literal it
announces; a message front end (a UDP datagram, a WebSocket message) gets
the line and its literal in one piece. Both refuse a line over
``--max-line`` and a literal over its verb's limit with the same words; a
message front end also refuses a message that holds more than one command or
a literal of another length than announced (:func:`split_message`,
:func:`message_literal`).

What is particular to one transport stays with it: how large a datagram may
be, and the hint to use TCP instead.
"""

from __future__ import annotations

from msgsvc.protocol.wire import Err, Request, parse_request

__all__ = [
    "ONE_COMMAND",
    "FramingError",
    "line_too_long",
    "literal_mismatch",
    "literal_too_big",
    "message_literal",
    "split_message",
]

ONE_COMMAND = Err("bad-args", "one command per datagram or WebSocket message")
"""The refusal of a message holding more than one command line."""


def line_too_long(limit: int) -> Err:
    """The refusal of a command line over ``--max-line`` (a stream front end closes after it)."""
    return Err("line-too-long", f"command lines are limited to {limit} bytes")


def literal_too_big(size: int, limit: int) -> Err:
    """The refusal of a literal over its verb's limit (a HugeSize reads 'more than 10^20')."""
    return Err("too-big", f"literal of {size} bytes exceeds the {limit}-byte limit")


def literal_mismatch(announced: int, held: int) -> Err:
    """The refusal of a message whose literal is not the size its marker announced."""
    return Err("bad-args", f"the literal announced {announced} bytes but the message holds {held}")


class FramingError(Exception):
    """A message that cannot be read as one command: ``reply`` (tagged ``tag``) says why."""

    def __init__(self, reply: Err, tag: bytes | None = None) -> None:
        super().__init__(reply)
        self.reply = reply
        self.tag = tag


def split_message(message: bytes, max_line: int) -> tuple[Request | None, bytes]:
    """A whole message's request (None for a blank line) and the bytes after its line.

    One trailing LF or CRLF ends the line. Raises :class:`FramingError` for a
    line over ``max_line``, which is refused whole, never cut short.
    """
    line, _, rest = message.partition(b"\n")
    if line.endswith(b"\r"):
        line = line[:-1]
    if len(line) > max_line:
        raise FramingError(line_too_long(max_line))
    return parse_request(line), rest


def message_literal(request: Request, rest: bytes, limit: int) -> bytes | None:
    """The literal ``request`` announces, taken from ``rest`` (what followed its line in the message).

    None when it announces none. One LF or CRLF after the literal is allowed.
    Raises :class:`FramingError` (tagged as the request) for more than one
    command, a literal over ``limit``, or one of another length than announced.
    """
    size = request.literal_size
    if size is None:
        if rest:
            raise FramingError(ONE_COMMAND, request.tag)
        return None
    if size > limit:
        raise FramingError(literal_too_big(size, limit), request.tag)
    if len(rest) != size and rest[size:] not in (b"\n", b"\r\n"):
        raise FramingError(literal_mismatch(size, len(rest)), request.tag)
    return rest[:size]
