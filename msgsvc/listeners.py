# -*- test-case-name: tests.test_tap -*-
"""Listening on one port number over TCP and UDP.

``internet.TCPServer`` and ``UDPServer`` each bind on their own, so with
``--port 0`` they would get different numbers; this service binds TCP first
and then UDP on the number TCP got.
"""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import DatagramProtocol, Factory
from twisted.logger import Logger

log = Logger()

LISTEN_BACKLOG = 511
"""Connections the kernel queues before they are accepted (as Redis and nginx); Twisted's 50 drops bursts."""
PORT_ATTEMPTS = 20
"""How often to pick a new free port when ``--port 0`` finds its UDP twin taken."""


class ListenerService(Service):
    """Serves a TCP factory and a UDP protocol on the same interface and port number."""

    def __init__(self, reactor, interface: str, port: int, tcp: Factory | None, udp: DatagramProtocol | None):
        self.reactor = reactor
        self.interface = interface
        self.port = port
        self.tcp = tcp
        self.udp = udp
        self.listening: list[IListeningPort] = []

    def startService(self) -> None:
        super().startService()
        for attempt in range(PORT_ATTEMPTS):
            try:
                self._listen()
                break
            except CannotListenError as error:
                self._stop_listening()
                if self.port != 0 or attempt == PORT_ATTEMPTS - 1:
                    reason = error.socketError.strerror if error.socketError else error
                    raise SystemExit(f"msgsvc: cannot listen on {error.interface}:{error.port}: {reason}") from None
        host = f"[{self.interface}]" if ":" in self.interface else self.interface
        transports = " and ".join(name for name, part in (("TCP", self.tcp), ("UDP", self.udp)) if part)
        log.info(
            "Server started on {address}:{port} ({transports})",
            address=host,
            port=self.bound_port,
            transports=transports,
            category="GENERAL",
        )

    def _listen(self) -> None:
        port = self.port
        if self.tcp is not None:
            tcp = self.reactor.listenTCP(port, self.tcp, backlog=LISTEN_BACKLOG, interface=self.interface)
            self.listening.append(tcp)
            port = self.listening[0].getHost().port
        if self.udp is not None:
            self.listening.append(self.reactor.listenUDP(port, self.udp, interface=self.interface))

    @property
    def bound_port(self) -> int:
        """The port number actually listened on."""
        return self.listening[0].getHost().port

    def stopService(self) -> Deferred:
        super().stopService()
        if self.listening:
            log.info("Server stopping on port {port}", port=self.bound_port, category="CONNECTION")
        return self._stop_listening()

    def _stop_listening(self) -> Deferred:
        ports, self.listening = self.listening, []
        return gatherResults([maybeDeferred(port.stopListening) for port in ports])
