"""Per-client state held by the broker."""

from __future__ import annotations

from dataclasses import dataclass, field

from zope.interface import implementer

from msgsvc.interfaces import IClient


@implementer(IClient)
class _Departed:
    """What a session points at once its client has gone: events and closing go nowhere."""

    transport_name = "gone"
    peer = ("", 0)
    max_payload = None

    def send_event(self, line: bytes) -> None:
        """Nobody to tell."""

    def close(self, reason: str) -> None:
        """Already closed."""


DEPARTED = _Departed()


@dataclass(eq=False)
class Session:
    """One client of this server run: a TCP connection, a UDP session, or a lone datagram."""

    id: int
    client: IClient
    opened: float
    counted: bool = True
    transport_name: str = field(init=False)
    """'tcp' or 'udp', kept for STATUS after the client has gone."""
    peer: tuple[str, int] = field(init=False)
    """The client's (host, port), kept for STATUS after it has gone."""
    """False for a datagram handled without a UDP session: it holds no slot and no state."""
    closed: float | None = None
    name: str | None = None
    """The chat name, set by NAME or by logging in to the forum."""
    sent: int = 0
    """Chat messages this client has said."""

    def __post_init__(self) -> None:
        self.transport_name = self.client.transport_name
        self.peer = self.client.peer

    @property
    def open(self) -> bool:
        """Whether the client is still connected."""
        return self.closed is None
