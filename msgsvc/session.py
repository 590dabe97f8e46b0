"""Per-client state held by the broker."""

from __future__ import annotations

from dataclasses import dataclass

from msgsvc.interfaces import IClient


@dataclass(eq=False)
class Session:
    """One client of this server run: a TCP connection, a UDP session, or a lone datagram."""

    id: int
    client: IClient
    opened: float
    counted: bool = True
    """False for a datagram handled without a UDP session: it holds no slot and no state."""
    closed: float | None = None
    name: str | None = None
    """The chat name, set by NAME or by logging in to the forum."""
    sent: int = 0
    """Chat messages this client has said."""

    @property
    def open(self) -> bool:
        """Whether the client is still connected."""
        return self.closed is None
