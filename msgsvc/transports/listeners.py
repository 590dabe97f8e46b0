# -*- test-case-name: tests.test_tap,tests.test_startup -*-
"""Listening on one port number over TCP and UDP, and on the ``--listen`` endpoints.

``internet.TCPServer`` and ``UDPServer`` each bind on their own, so with
``--port 0`` they would get different numbers; this service binds TCP first
(through a Twisted server endpoint whose connections send without epoll_ctl,
:mod:`msgsvc.transports.eager`) and then UDP on the number TCP got. Then it
binds the ``--listen`` endpoints, serving the same TCP factory; while ``ssl:``
ones listen, SIGHUP reloads their certificates.

Like ``internet.TCPServer``, it binds in ``privilegedStartService``, which
twistd calls in the process that serves (after daemonizing, before shedding
privileges); a port that cannot be bound raises :class:`StartupError`, which
twistd reports (see :mod:`msgsvc.tap`).
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.application.service import Service
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IListeningPort,
    IReactorFromThreads,
    IReactorTCP,
    IReactorUDP,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import DatagramProtocol, Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from msgsvc.store import answers
from msgsvc.transports.endpoints import ListenSpec, tcp_endpoint
from msgsvc.transports.tls import HangupReload, ReloadableCertificate

log = Logger()

UDP_MAX_PACKET = 65535
"""Bytes read per datagram: any UDP payload whole (Twisted's default, 8192, would cut longer ones short)."""
PORT_ATTEMPTS = 20
"""How often to pick a new free port when ``--port 0`` finds its UDP twin taken."""


class StartupError(Exception):
    """Serving cannot start (port taken, store unusable or in use); the message is the one-line reason."""


def startup_error(reason: str) -> StartupError:
    """Log why the start failed (a daemon's log file says it too) and return the exception to raise."""
    log.error("msgsvc cannot start: {reason}", reason=reason, category="ERROR")
    return StartupError(reason)


class ListenerService(Service):
    """Serves a TCP factory and a UDP protocol on the same interface and port number, and ``stream`` on ``listens``.

    ``tcp``, ``udp`` and ``stream`` may be set after construction, as long as it is before the service starts.
    """

    def __init__(
        self,
        reactor: IReactorTCP,
        interface: str,
        port: int,
        tcp: Factory | None,
        udp: DatagramProtocol | None,
        listens: Sequence[ListenSpec] = (),
    ) -> None:
        self.reactor = reactor
        self.interface = interface
        self.port = port
        self.tcp = tcp
        self.udp = udp
        self.listens = list(listens)
        self.stream = tcp
        """The factory of the ``--listen`` listeners: the TCP one (set even when the main port serves UDP only)."""
        self.listening: list[IListeningPort] = []
        """The main port's TCP and UDP ports."""
        self.extra: list[IListeningPort] = []
        """The ``--listen`` ports, in the order of ``listens``."""
        self.hangup: HangupReload | None = None
        """SIGHUP's handler while ``ssl:`` listeners listen."""

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._bind()

    def startService(self) -> None:
        if not self.listening:  # not started by twistd, which binds in privilegedStartService
            self._bind()
        super().startService()
        transports = " and ".join(name for name, part in (("TCP", self.tcp), ("UDP", self.udp)) if part)
        self._started(self.interface, self.bound_port, transports)
        for spec, port in zip(self.listens, self.extra, strict=True):
            address = port.getHost()
            assert isinstance(address, (IPv4Address, IPv6Address))  # a TCP port
            self._started(address.host, address.port, "TCP" if spec.key_files is None else "TLS")
        if self.hangup is not None:
            self.hangup.install()

    def _started(self, host: str, port: int, transports: str) -> None:
        log.info(
            "Server started on {address}:{port} ({transports})",
            address=f"[{host}]" if ":" in host else host,
            port=port,
            transports=transports,
            category="GENERAL",
        )

    def _bind(self) -> None:
        for attempt in range(PORT_ATTEMPTS):
            try:
                self._listen()
                break
            except CannotListenError as error:
                self._stop_listening()
                if self.port != 0 or attempt == PORT_ATTEMPTS - 1:
                    raise _cannot_listen(error) from None
        try:
            self._listen_extra()
        except CannotListenError as error:
            self._stop_listening()
            raise _cannot_listen(error) from None
        except StartupError:
            self._stop_listening()
            raise

    def _listen_extra(self) -> None:
        """Bind the ``--listen`` endpoints; their certificates reload on SIGHUP once the service runs."""
        certificates = []
        for spec in self.listens:
            tls = None
            if spec.key_files is not None:
                try:
                    tls = ReloadableCertificate(*spec.key_files)
                except ValueError as error:
                    raise startup_error(f"--listen {spec.description}: {error}") from None
                certificates.append(tls)
            assert self.stream is not None, "the --listen listeners serve the TCP factory"
            self.extra.append(_listen_now(spec.endpoint(self.reactor, tls), self.stream))
        if certificates:
            self.hangup = HangupReload(IReactorFromThreads(self.reactor), certificates)

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
        """Listen through a TCP endpoint (eager where the reactor allows, see :func:`tcp_endpoint`)."""
        assert self.tcp is not None  # serving TCP
        return _listen_now(tcp_endpoint(self.reactor, port, self.interface), self.tcp)

    @property
    def bound_port(self) -> int:
        """The port number actually listened on."""
        return _number(self.listening[0])

    def stopService(self) -> Deferred[list[None]]:
        super().stopService()
        if self.hangup is not None:
            self.hangup.restore()
            self.hangup = None
        if self.listening:
            log.info("Server stopping on port {port}", port=self.bound_port, category="CONNECTION")
        return self._stop_listening()

    def _stop_listening(self) -> Deferred[list[None]]:
        ports, self.listening, self.extra = self.listening + self.extra, [], []
        return gatherResults([answers.attempt(port.stopListening) for port in ports])


def _listen_now(endpoint: IStreamServerEndpoint, factory: Factory) -> IListeningPort:
    """Listen on a TCP (or TLS over TCP) endpoint; it binds at once, so its Deferred has fired on return."""
    outcome: list[IListeningPort | Failure] = []
    endpoint.listen(factory).addBoth(outcome.append)
    (result,) = outcome
    if isinstance(result, Failure):
        result.raiseException()
    return result


def _cannot_listen(error: CannotListenError) -> StartupError:
    """The StartupError of a port that cannot be bound, in one line."""
    reason = error.socketError.strerror if error.socketError else error
    return startup_error(f"cannot listen on {error.interface}:{error.port}: {reason}")


def _number(port: IListeningPort) -> int:
    """The port number a TCP or UDP port listens on."""
    address = port.getHost()
    assert isinstance(address, (IPv4Address, IPv6Address))  # an IP port
    return address.port
