"""What the broker tells clients unasked: events as values, encoded by each front end.

The domain builds one value per happening and hands the same value to every
client concerned (``IClient.send_event``); the wire format of each lives in
:mod:`msgsvc.protocol.events`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Chat:
    """A named client said a line."""

    name: str
    text: str


@dataclass(frozen=True, slots=True)
class Join:
    """A client took a name."""

    name: str


@dataclass(frozen=True, slots=True)
class Leave:
    """A name is free again: its client left, took another name, or lost it to the account."""

    name: str


@dataclass(frozen=True, slots=True)
class Tweet:
    """A new microblog message that matches what the client follows."""

    id: int
    author: str
    text: str


@dataclass(frozen=True, slots=True)
class Packet:
    """One packet of the client's STREAM."""

    seq: int
    count: int
    unix_ms: int


@dataclass(frozen=True, slots=True)
class Bye:
    """The server is about to end the client's connection or session."""

    reason: str


Event = Chat | Join | Leave | Tweet | Packet | Bye
