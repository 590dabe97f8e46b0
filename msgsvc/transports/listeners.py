# -*- test-case-name: tests.test_tap,tests.test_startup -*-
"""Listening on one port number over TCP and UDP.

``internet.TCPServer`` and ``UDPServer`` each bind on their own, so with
``--port 0`` they would get different numbers; this service binds TCP first
(through a Twisted server endpoint) and then UDP on the number TCP got.

Like ``internet.TCPServer``, it binds in ``privilegedStartService``, which
twistd calls in the process that serves (after daemonizing, before shedding
privileges); a port that cannot be bound raises :class:`StartupError`, which
twistd reports (see :mod:`msgsvc.tap`).
"""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import quoteStringArgument, serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IReactorTCP, IReactorUDP
from twisted.internet.protocol import DatagramProtocol, Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from msgsvc.store import answers

log = Logger()

UDP_MAX_PACKET = 65535
"""Bytes read per datagram: any UDP payload whole (Twisted's default, 8192, would cut longer ones short)."""
LISTEN_BACKLOG = 511
"""Connections the kernel queues before they are accepted (as Redis and nginx); Twisted's 50 drops bursts."""
PORT_ATTEMPTS = 20
"""How often to pick a new free port when ``--port 0`` finds its UDP twin taken."""


class StartupError(Exception):
    """Serving cannot start (port taken, store unusable or in use); the message is the one-line reason."""


def startup_error(reason: str) -> StartupError:
    """Log why the start failed (a daemon's log file says it too) and return the exception to raise."""
    log.error("msgsvc cannot start: {reason}", reason=reason, category="ERROR")
    return StartupError(reason)


class ListenerService(Service):
    """Serves a TCP factory and a UDP protocol on the same interface and port number.

    ``tcp`` and ``udp`` may be set after construction, as long as it is before the service starts.
    """

    def __init__(
        self, reactor: IReactorTCP, interface: str, port: int, tcp: Factory | None, udp: DatagramProtocol | None
    ) -> None:
        self.reactor = reactor
        self.interface = interface
        self.port = port
        self.tcp = tcp
        self.udp = udp
        self.listening: list[IListeningPort] = []

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._bind()

    def startService(self) -> None:
        if not self.listening:  # not started by twistd, which binds in privilegedStartService
            self._bind()
        super().startService()
        host = f"[{self.interface}]" if ":" in self.interface else self.interface
        transports = " and ".join(name for name, part in (("TCP", self.tcp), ("UDP", self.udp)) if part)
        log.info(
            "Server started on {address}:{port} ({transports})",
            address=host,
            port=self.bound_port,
            transports=transports,
            category="GENERAL",
        )

    def _bind(self) -> None:
        for attempt in range(PORT_ATTEMPTS):
            try:
                self._listen()
                return
            except CannotListenError as error:
                self._stop_listening()
                if self.port != 0 or attempt == PORT_ATTEMPTS - 1:
                    reason = error.socketError.strerror if error.socketError else error
                    raise startup_error(f"cannot listen on {error.interface}:{error.port}: {reason}") from None

    def _listen(self) -> None:
        port = self.port
        if self.tcp is not None:
            self.listening.append(self._listen_tcp(port))
            port = _number(self.listening[0])
        if self.udp is not None:
            self.listening.append(
                IReactorUDP(self.reactor).listenUDP(
                    port, self.udp, interface=self.interface, maxPacketSize=UDP_MAX_PACKET
                )
            )

    def _listen_tcp(self, port: int) -> IListeningPort:
        """Listen through a ``tcp:`` endpoint; it binds at once, so its Deferred has fired on return."""
        description = f"tcp:{port}:interface={quoteStringArgument(self.interface)}:backlog={LISTEN_BACKLOG}"
        outcome: list[IListeningPort | Failure] = []
        serverFromString(self.reactor, description).listen(self.tcp).addBoth(outcome.append)
        (result,) = outcome
        if isinstance(result, Failure):
            result.raiseException()
        return result

    @property
    def bound_port(self) -> int:
        """The port number actually listened on."""
        return _number(self.listening[0])

    def stopService(self) -> Deferred[list[None]]:
        super().stopService()
        if self.listening:
            log.info("Server stopping on port {port}", port=self.bound_port, category="CONNECTION")
        return self._stop_listening()

    def _stop_listening(self) -> Deferred[list[None]]:
        ports, self.listening = self.listening, []
        return gatherResults([answers.attempt(port.stopListening) for port in ports])


def _number(port: IListeningPort) -> int:
    """The port number a TCP or UDP port listens on."""
    address = port.getHost()
    assert isinstance(address, (IPv4Address, IPv6Address))  # an IP port
    return address.port
