"""Per-client state held by the broker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from msgsvc.domain.events import Event
from msgsvc.domain.interfaces import IClient

GUEST_MARK = "~"
"""Put before a guest's name where the server attributes something to it (see ``Session.display_name``)."""


@implementer(IClient)
class _Departed:
    """What a session points at once its client has gone: events and closing go nowhere."""

    transport_name = "gone"
    peer = ("", 0)

    def send_event(self, event: Event) -> None:
        """Nobody to tell."""

    def close(self, reason: str) -> None:
        """Already closed."""


DEPARTED = _Departed()


@dataclass(eq=False)
class Session:
    """One client of this server run, or one request from a client the server does not keep."""

    id: int
    client: IClient
    opened: float
    lasting: bool = True
    """False for a one-off request (a front end that keeps no client for it): it holds no slot and no state."""
    secure: bool = False
    """Whether the client's channel is encrypted (TLS); its front end says so when it opens the session."""
    transport_name: str = field(init=False)
    """The front end's name (``tcp``, ``tls``, ``udp``), kept for STATUS after the client has gone."""
    peer: tuple[str, int] = field(init=False)
    """The client's (host, port), kept for STATUS after it has gone."""
    closed: float | None = None
    name: str | None = None
    """The chat name, set by NAME or by logging in to the forum."""
    account: str | None = None
    """The forum account this client logged in to (kept once it has gone, for STATUS)."""
    sent: int = 0
    """Chat messages this client has said."""

    _hold: Deferred[None] | None = field(default=None, init=False, repr=False)

    def hold(self, work: Deferred[Any]) -> None:
        """Make this client's later commands wait until ``work`` is done (a login being checked)."""
        done: Deferred[None] = Deferred()
        self._hold = done

        def release(result: Any) -> Any:
            if self._hold is done:
                self._hold = None
            done.callback(None)
            return result

        work.addBoth(release)

    @property
    def held(self) -> bool:
        """Whether an earlier command of this client is still holding the later ones."""
        return self._hold is not None

    def settled(self) -> Deferred[None] | None:
        """None when nothing holds this client's commands, else a Deferred firing once the hold ends."""
        if self._hold is None:
            return None
        waiter: Deferred[None] = Deferred()

        def wake(result: Any) -> Any:
            waiter.callback(None)
            return result

        self._hold.addBoth(wake)
        return waiter

    def __post_init__(self) -> None:
        self.transport_name = self.client.transport_name
        self.peer = self.client.peer

    @property
    def display_name(self) -> str | None:
        """How the server shows this client where it attributes something to it: tweets, WHO, STATUS.

        The one place of the rule: a client named after the forum account it
        logged in to shows its bare name (``erin``); any other name is a
        guest's and shows as ``~erin`` (``~`` is never part of a name, so a guest
        can never pass for the account erin); a client without a name is None.
        Chat events (``* CHAT``, ``* JOIN``, ``* LEAVE``) and NAME's reply use
        the bare :attr:`name`.
        """
        if self.name is None:
            return None
        if self.account is not None and self.account.casefold() == self.name.casefold():
            return self.name
        return GUEST_MARK + self.name

    @property
    def open(self) -> bool:
        """Whether the client is still connected."""
        return self.closed is None
