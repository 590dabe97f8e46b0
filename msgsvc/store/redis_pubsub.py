# -*- test-case-name: tests.test_cluster -*-
"""The one SUBSCRIBE connection of a node: the other nodes' publications, as bytes.

A subscribed Redis connection takes no other command, so it is a connection
of its own (a txredisapi SubscriberFactory), reconnecting like the commands'
connection and subscribing again each time it is up. What is published while
it is down is lost: the domain re-checks what matters (waiting receivers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hiredis
import txredisapi
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint

from msgsvc.store.redis_connection import CONNECT_WAIT, RETRY_DELAY, Address


class Listener(txredisapi.SubscriberProtocol):
    """txredisapi's subscriber; a published message goes straight from hiredis's parser to ``heard``.

    A node hears every publication, its own too (one per message sent), so
    this path skips txredisapi's per-reply conversions; any other reply (the
    confirmation of SUBSCRIBE) takes txredisapi's.
    """

    heard: Callable[[bytes], None]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.replies = hiredis.Reader(protocolError=txredisapi.InvalidData, replyError=txredisapi.ResponseError)

    def dataReceived(self, data: bytes, unpause: bool = False) -> None:
        """Each whole reply in ``data``: a message to ``heard``, anything else to txredisapi."""
        reader = self.replies
        reader.feed(data)
        reply = reader.gets()
        while reply is not False:
            if type(reply) is list and len(reply) == 3 and reply[0] == b"message":
                self.heard(reply[2])
            else:
                self.replyReceived(self.tryConvertData(reply))
            reply = reader.gets()


class Subscription:
    """Calls ``heard(message)`` for each message published on ``channel``."""

    def __init__(self, address: Address, channel: bytes, heard: Callable[[bytes], None]) -> None:
        factory = txredisapi.SubscriberFactory(isLazy=True)
        factory.protocol = Listener
        factory.charset = None
        factory.dbid = None  # PUBLISH reaches every database's subscribers
        factory.initialDelay, factory.maxDelay = RETRY_DELAY
        self._factory = factory
        self.up: Deferred[None] = Deferred()
        """Fires once the first subscription is in place (what is published before is not heard)."""
        build = factory.buildProtocol

        def subscribed(_: object) -> None:
            if not self.up.called:
                self.up.callback(None)

        def listener(addr: Any) -> Any:
            protocol = build(addr)
            protocol.heard = heard
            connected = protocol.whenConnected()
            connected.addCallback(lambda up: up.subscribe([channel])).addCallbacks(subscribed, lambda _: None)
            return protocol

        factory.buildProtocol = listener
        factory.startConnecting(HostnameEndpoint(reactor, address.host, address.port, timeout=CONNECT_WAIT))

    def close(self) -> Deferred[None]:
        """Stop listening; fires once the connection is closed."""
        return self._factory.disconnect().addBoth(lambda _: None)
