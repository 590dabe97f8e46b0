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
from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from zope.interface import implementer

from msgsvc.dispatch.table import Plan
from msgsvc.domain.broker import Broker
from msgsvc.domain.events import Bye, Event
from msgsvc.domain.interfaces import IClient
from msgsvc.domain.session import Session
from msgsvc.protocol.events import encode_event
from msgsvc.protocol.wire import FULL, Err
from msgsvc.transports.udp_safety import HINT

__all__ = ["UdpClient", "UdpSessions", "key_refused", "needs_cookie", "needs_key", "too_big"]

Send = Callable[[bytes, tuple], object]

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

    def __init__(self, sessions: UdpSessions, address: Address, validated: bool = True) -> None:
        self.sessions = sessions
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
            self.sessions.send(encode_event(event), self.address)
        else:
            self.sessions.count_drop("event")

    def close(self, reason: str) -> None:
        self.sessions.end(self.address, reason)


class UdpSessions:
    """The lasting sessions of one UDP front end, one per address, and who may act in them."""

    def __init__(self, broker: Broker, clock: IReactorTime, send: Send, count_drop: Callable[[str], object]) -> None:
        """``send(data, address)`` sends a datagram; ``count_drop(reason)`` counts one not sent."""
        self.broker = broker
        self.clock = clock
        self.send = send
        self.count_drop = count_drop
        self._clients: dict[Address, UdpClient] = {}

    def enter(
        self, address: Address, validated: bool, key: bytes | None, plan: Plan, verb: str
    ) -> tuple[UdpClient, bool, Err | None]:
        """(the client a request runs as, whether it opened a session, a refusal or None).

        The request runs in the address's session if it may act in it; else
        one-off, or in a new session when its verb remembers the client.
        """
        client = self._clients.get(address) if validated else None  # forged: not its session
        if client is not None and client.admits(key):
            assert client.idle_timer is not None  # a kept client has its timer
            client.idle_timer.reset(self.broker.config.idle_timeout)
            return client, False, None
        keyed = client is not None  # the address's session is bound to another key
        client = UdpClient(self, address, validated)
        if plan.remembers_client and not validated:  # forged datagrams take no slot
            return client, False, needs_cookie(verb)
        if plan.remembers_client and keyed:
            return client, False, key_refused(verb)
        if plan.identity and key is None:
            return client, False, needs_key(verb)
        if not plan.remembers_client:
            client.session = self.broker.one_off_session(client)
            return client, False, None
        client.session = self.broker.open_session(client)
        if client.session is None:
            return client, False, FULL
        self._clients[address] = client
        client.idle_timer = self.clock.callLater(self.broker.config.idle_timeout, self.end, address, "idle-timeout")
        return client, True, None

    def end(self, address: Address, bye: str | None) -> None:
        """End the session of ``address``, saying ``* BYE <bye>`` first if given."""
        client = self._clients.pop(address, None)
        if client is None:
            return
        assert client.session is not None and client.idle_timer is not None  # a kept client has both
        if client.idle_timer.active():
            client.idle_timer.cancel()
        if bye is not None:
            self.send(encode_event(Bye(bye)), address)
        self.broker.close_session(client.session)

    def stop(self) -> None:
        """End every session, without a word."""
        for address in list(self._clients):
            self.end(address, None)
