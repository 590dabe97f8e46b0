# -*- test-case-name: tests.test_wire -*-
"""Events on the wire: a line ``* NAME args`` with its CRLF, one per event value."""

from __future__ import annotations

from msgsvc.domain.events import Bye, Chat, Event, Join, Leave, Packet, Tweet
from msgsvc.protocol.wire import CRLF

_last: tuple[Event | None, bytes] = (None, b"")
"""The last event encoded: a broadcast hands the same value to every member, so it is encoded once."""


def encode_event(event: Event) -> bytes:
    """The event's exact bytes on the wire."""
    global _last
    if _last[0] is event:
        return _last[1]
    encoded = b"* " + _words(event).encode() + CRLF
    _last = (event, encoded)
    return encoded


def _words(event: Event) -> str:
    match event:
        case Chat(name, text):
            return f"CHAT {name} {text}"
        case Join(name):
            return f"JOIN {name}"
        case Leave(name):
            return f"LEAVE {name}"
        case Tweet(tweet_id, author, text):
            return f"TWEET {tweet_id} {author} {text}"
        case Packet(seq, count, unix_ms):
            return f"PKT {seq} {count} {unix_ms}"
        case Bye(reason):
            return f"BYE {reason}"
    raise TypeError(f"not an event: {event!r}")
