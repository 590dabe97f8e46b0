# -*- test-case-name: tests.test_web_site,tests.test_tap -*-
"""Serving the web interface on the ``--web`` endpoint, bound when the application starts (as the listeners are)."""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IReactorCore
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Site

from msgsvc.store import answers
from msgsvc.transports.listeners import startup_error

log = Logger()


class WebService(Service):
    """Listens on a Twisted server endpoint (``tcp:8080``, ``ssl:8443:...``) with the site set before it starts.

    Like the TCP listener it binds in ``privilegedStartService``; a port that
    cannot be bound raises :class:`~msgsvc.transports.listeners.StartupError`.
    """

    def __init__(self, reactor: IReactorCore, description: str) -> None:
        self.reactor = reactor
        self.description = description
        self.site: Site | None = None
        """The web interface; set once the broker exists (see :class:`msgsvc.startup.StartupService`)."""
        self.port: IListeningPort | None = None

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._bind()

    def startService(self) -> None:
        if self.port is None:  # not started by twistd, which binds in privilegedStartService
            self._bind()
        super().startService()
        log.info("Web interface on {url} (status, /metrics, /chat, /ws)", url=self.url, category="GENERAL")

    def _bind(self) -> None:
        """Listen; a ``tcp:`` or ``ssl:`` endpoint binds at once, so its Deferred has fired on return."""
        assert self.site is not None  # set by the startup service, which starts first
        outcome: list[IListeningPort | Failure] = []
        try:
            serverFromString(self.reactor, self.description).listen(self.site).addBoth(outcome.append)
        except (ValueError, OSError) as error:  # a certificate file gone since the options were checked
            raise startup_error(f"--web {self.description}: {error}") from None
        if not outcome:
            raise startup_error(f"--web {self.description}: the endpoint does not listen at once")
        result = outcome[0]
        if isinstance(result, Failure):
            failed = result.value
            if isinstance(failed, CannotListenError):
                reason = failed.socketError.strerror if failed.socketError else failed
                raise startup_error(f"cannot listen on {failed.interface or '*'}:{failed.port} (--web): {reason}")
            raise startup_error(f"--web {self.description}: {failed}")
        self.port = result

    @property
    def bound_port(self) -> int:
        """The port number the web interface listens on."""
        assert self.port is not None  # listening
        address = self.port.getHost()
        assert isinstance(address, (IPv4Address, IPv6Address))  # a TCP or TLS endpoint
        return address.port

    @property
    def url(self) -> str:
        """The web interface's address, for the log."""
        assert self.port is not None  # listening
        address = self.port.getHost()
        scheme = "https" if self.description.startswith("ssl:") else "http"
        if isinstance(address, (IPv4Address, IPv6Address)):
            host = f"[{address.host}]" if ":" in address.host else address.host
            return f"{scheme}://{host}:{address.port}/"
        return f"{scheme} on {address}"

    def stopService(self) -> Deferred[None]:
        super().stopService()
        port, self.port = self.port, None
        if port is None:
            return succeed(None)
        return answers.attempt(port.stopListening).addCallback(lambda _: None)


def listening_address(description: str) -> tuple[str, int] | None:
    """The (interface, port) a ``tcp:``, ``tcp6:`` or ``ssl:`` endpoint description binds; None for other kinds.

    For the check before twistd forks (:func:`msgsvc.startup.preflight`);
    the description is quoted as Twisted's (a backslash escapes the next character).
    """
    kind, *arguments = _fields(description)
    if kind not in ("tcp", "tcp6", "ssl"):
        return None
    interface = "::" if kind == "tcp6" else ""
    port: str | None = None
    for argument in arguments:
        key, equals, value = argument.partition("=")
        if not equals and port is None:
            port = argument
        elif key == "port":
            port = value
        elif key == "interface":
            interface = value
    if port is None or not port.isdigit():
        return None
    return interface, int(port)


def _fields(description: str) -> list[str]:
    """An endpoint description split at its unescaped colons, unescaped."""
    fields = [""]
    escaped = False
    for character in description:
        if escaped:
            fields[-1] += character
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == ":":
            fields.append("")
        else:
            fields[-1] += character
    return fields
