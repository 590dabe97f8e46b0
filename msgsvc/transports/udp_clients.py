# -*- test-case-name: tests.test_udp_keys -*-
"""A UDP peer as the broker sees it, and the rules that keep a forged datagram out of its session.

A session belongs to an address, but an address proves little: a datagram
can be forged with it, and after the client leaves another process may bind
the same port. So a session that carries an identity (``LOGIN``,
``REGISTER``) is bound to a key the client chose and sends as ``&<key>``
with every request; a datagram without that key never acts in it, whatever
address it comes from.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from twisted.internet.interfaces import IDelayedCall
from zope.interface import implementer

from msgsvc.domain.events import Event
from msgsvc.domain.interfaces import IClient
from msgsvc.domain.session import Session
from msgsvc.protocol.events import encode_event
from msgsvc.protocol.wire import Err
from msgsvc.transports.udp_safety import HINT

if TYPE_CHECKING:
    from msgsvc.transports.udp import DatagramFrontEnd

__all__ = ["UdpClient", "key_refused", "needs_cookie", "needs_key", "too_big"]

Address = tuple
KEY_HINT = "start this and every later request with &<key>, 8 to 64 letters or digits of your choosing"


def too_big(size: int) -> Err:
    """The answer to a request whose reply does not fit one datagram, from a client that speaks no transfers."""
    return Err("too-big", f"a {size}-byte reply does not fit one datagram; use TCP or a client that speaks transfers")


def needs_cookie(verb: str) -> Err:
    """The refusal of a session verb from an unvalidated address: forged datagrams take no slot."""
    return Err("bad-args", f"{verb} needs a validated address: {HINT}")


def needs_key(verb: str) -> Err:
    """The refusal of LOGIN or REGISTER without a session key."""
    return Err("bad-args", f"{verb} over UDP needs a session key: {KEY_HINT}")


def key_refused(verb: str) -> Err:
    """The refusal of a session verb from an address whose session is bound to another key."""
    return Err("bad-args", f"{verb}: this address has a session bound to a key; send its &<key>, or wait until it ends")


@implementer(IClient)
class UdpClient:
    """A UDP peer as the broker sees it: events and replies go back as datagrams."""

    transport_name = "udp"

    def __init__(self, front_end: DatagramFrontEnd, address: Address, validated: bool = True) -> None:
        self.front_end = front_end
        self.address = address
        self.validated = validated
        """Trusted, or proved by a cookie: only then may events go to it."""
        self.peer = (address[0], address[1])
        self.session: Session | None = None
        self.idle_timer: IDelayedCall | None = None
        self.key: bytes | None = None
        """Once the session carries an identity: the key every request in it must carry."""

    def admits(self, key: bytes | None) -> bool:
        """Whether a request carrying ``key`` acts in this client's session."""
        if self.key is None:
            return True
        return key is not None and hmac.compare_digest(self.key, key)

    def bind_key(self, key: bytes | None) -> None:
        """After a command: a session that now carries an identity is bound to the key that request carried."""
        session = self.session
        if self.key is None and key is not None and session is not None and session.account is not None:
            self.key = key

    def send_event(self, event: Event) -> None:
        if self.validated:
            self.front_end.send(encode_event(event), self.address)
        else:
            self.front_end.count_drop("event")

    def close(self, reason: str) -> None:
        self.front_end.end_session(self.address, reason)
