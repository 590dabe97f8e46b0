# -*- test-case-name: tests.test_tcp,tests.test_websocket -*-
"""What the stream front ends (TCP and TLS connections, WebSocket clients) share: the greeting, and
what a connection uses of its transport."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from twisted.internet.interfaces import IPushProducer

from msgsvc import __version__
from msgsvc.protocol.wire import CRLF

GREETING = f"OK msgsvc {__version__} ready; HELP lists commands".encode() + CRLF
"""The first line every stream client reads."""


@runtime_checkable
class StreamTransport(Protocol):
    """What a connection uses of its transport: TCP and TLS transports have all of it, and so
    does a test's StringTransport, though no one Twisted interface declares it all."""

    def write(self, data: bytes) -> None: ...

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None: ...

    def unregisterProducer(self) -> None: ...

    def loseConnection(self) -> None: ...

    def abortConnection(self) -> None: ...
