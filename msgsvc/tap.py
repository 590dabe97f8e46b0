# -*- test-case-name: tests.test_tap -*-
"""``twistd msgsvc``: command-line options and the service they build."""

from __future__ import annotations

import os
from collections.abc import Callable

from twisted.application.service import IServiceCollection, MultiService
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IReactorCore, IReactorTCP, IReactorTime
from twisted.logger import Logger
from twisted.python import usage

from msgsvc.config import Config
from msgsvc.domain.accounts.credentials import read_credentials
from msgsvc.eventlog import EventLogService, open_event_log
from msgsvc.startup import BrokerService, StartupService, preflight
from msgsvc.store import DEFAULT_STORE, STORE_URLS, StoreError, check_store_url
from msgsvc.transports.endpoints import ListenSpec, parse_listen
from msgsvc.transports.listeners import ListenerService, StartupError
from msgsvc.transports.tls import load_options
from msgsvc.transports.udp_safety import parse_trusted
from msgsvc.web.service import WebService

log = Logger()


def _lease(text: str) -> float:
    """``--node-lease``: seconds, more than none."""
    value = float(text)
    if not value > 0:
        raise ValueError(f"must be more than 0: {text}")
    return value


class _NonNegative:
    """An option's coerce function: ``kind(text)``, refusing a negative value (``coerceDoc`` goes in --help)."""

    coerceDoc = "Must not be negative."

    def __init__(self, kind: Callable[[str], int | float]) -> None:
        self._kind = kind

    def __call__(self, text: str) -> int | float:
        value = self._kind(text)
        if value < 0:
            raise ValueError(f"must not be negative: {text}")
        return value


class Options(usage.Options):
    """Options of ``twistd msgsvc``."""

    synopsis = "[options]"
    longdesc = (
        "A message queue, chat room, forum, microblog and echo/stream diagnostics "
        "on one port over TCP and UDP. Try it with: nc 127.0.0.1 55556"
    )
    optFlags = [
        ["no-udp", None, "Serve TCP only."],
        ["no-tcp", None, "Serve UDP only."],
        [
            "allow-plaintext-auth",
            None,
            "Accept LOGIN and REGISTER from other hosts without TLS (else they get ERR tls-required).",
        ],
    ]
    optParameters = [
        ["port", "p", 55556, "TCP and UDP port number (0 picks a free one; the log says which).", int],
        ["interface", "i", "127.0.0.1", "Address to listen on (0.0.0.0 or :: for all)."],
        [
            "max-clients",
            None,
            3,
            "Cap on TCP connections, UDP sessions and WebSocket clients together; 0 = no cap.",
            _NonNegative(int),
        ],
        ["idle-timeout", None, 600.0, "Seconds before an idle TCP connection or UDP session is closed.", float],
        ["max-message", None, 1048576, "Largest payload (message, literal) accepted, in bytes.", int],
        ["max-line", None, 8192, "Longest command line accepted, in bytes.", int],
        ["files", None, "data", "Directory served by LIST and GET."],
        ["history", None, 1000, "Gone clients remembered for STATUS.", _NonNegative(int)],
        ["store", None, DEFAULT_STORE, f"Where state lives: {STORE_URLS} (relative to the working directory)."],
        ["node-lease", None, 10.0, "Seconds a node on a shared store (Redis) outlives its last heartbeat.", _lease],
        ["ttr", None, 60.0, "Seconds a RESERVE holds a message before it is ready again.", float],
        ["max-deliveries", None, 5, "Reservations of one message before it moves to <queue>.dead.", int],
        ["stream-limit", None, 1000, "Most packets one STREAM may ask for.", int],
        ["max-gen", None, 123456789, "Largest GEN, in bytes.", int],
        ["event-log", None, None, "Append one line per server event, with its category, to this file."],
        ["max-upload", None, 67108864, "Largest forum upload accepted, in bytes.", int],
        [
            "max-pending-input",
            None,
            67108864,
            "Bytes of unfinished literals all clients together may hold in memory; past it a literal is refused.",
            int,
        ],
        [
            "login-limit",
            None,
            10,
            "Failed logins per minute from one /24 (IPv4) or /56 (IPv6); 0 = no limit.",
            _NonNegative(int),
        ],
        [
            "login-limit-global",
            None,
            100,
            "Failed logins per minute from everywhere together; 0 = no limit.",
            _NonNegative(int),
        ],
        [
            "register-limit",
            None,
            20,
            "Accounts registered per hour from one /24 or /56; 0 = no limit.",
            _NonNegative(int),
        ],
        [
            "register-limit-global",
            None,
            200,
            "Accounts registered per hour from everywhere; 0 = no limit.",
            _NonNegative(int),
        ],
        [
            "udp-trusted",
            None,
            "127.0.0.0/8,::1/128",
            "UDP peers exempt from address validation: comma-separated CIDRs, or 'none'.",
        ],
        ["credentials", None, None, "Import forum accounts from a 'username password' file at start (stored hashed)."],
        [
            "web",
            None,
            None,
            "Serve the status page (/), /metrics, the chat page (/chat) and WebSocket clients (/ws) on this "
            "Twisted server endpoint: tcp:8080:interface=127.0.0.1, or ssl:8443:privateKey=key.pem for HTTPS.",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self.listens: list[ListenSpec] = []

    def opt_listen(self, description: str) -> None:
        """An extra stream listener (repeatable), a Twisted endpoint string:
        tcp:PORT[:interface=ADDR] or ssl:PORT:privateKey=KEY.pem:certKey=CERT.pem[:interface=ADDR].
        Without interface= it listens on every IPv4 address. SIGHUP reloads ssl: certificates.
        """
        self["listen"].append(description)

    def postOptions(self) -> None:
        if self["no-udp"] and self["no-tcp"]:
            raise usage.UsageError("--no-udp and --no-tcp together leave nothing to serve")
        if not 0 <= self["port"] <= 65535:
            raise usage.UsageError(f"--port must be from 0 to 65535, not {self['port']}")
        if not self["idle-timeout"] > 0:
            raise usage.UsageError("--idle-timeout must be positive")
        for name in ("max-message", "max-line", "max-pending-input"):
            if self[name] < 1:
                raise usage.UsageError(f"--{name} must be at least 1")
        if self["stream-limit"] < 1:
            raise usage.UsageError("--stream-limit must be at least 1")
        if self["max-gen"] < 0:
            raise usage.UsageError("--max-gen must not be negative")
        if self["event-log"] is not None:
            try:
                open_event_log(self["event-log"]).close()
            except OSError as error:
                raise usage.UsageError(f"cannot write --event-log {self['event-log']}: {error.strerror}") from None
        if not self["ttr"] > 0:
            raise usage.UsageError("--ttr must be positive")
        if self["max-deliveries"] < 1:
            raise usage.UsageError("--max-deliveries must be at least 1")
        if self["max-upload"] < 1:
            raise usage.UsageError("--max-upload must be at least 1")
        try:
            self.udp_trusted = parse_trusted(self["udp-trusted"])
        except ValueError as error:
            raise usage.UsageError(str(error)) from None
        self.credentials: list[tuple[str, str]] = []
        if self["credentials"] is not None:
            try:
                self.credentials = read_credentials(self["credentials"])
            except ValueError as error:
                raise usage.UsageError(str(error)) from None
        try:
            check_store_url(self["store"])
        except StoreError as error:
            raise usage.UsageError(str(error)) from None
        self.listens = [self._listen_spec(description) for description in self["listen"]]
        if self["web"] is not None:
            _check_endpoint("--web", self["web"])

    @staticmethod
    def _listen_spec(description: str) -> ListenSpec:
        """A ``--listen`` description read, and its certificate tried; UsageError saying what is wrong."""
        try:
            spec = parse_listen(description)
            if spec.key_files is not None:
                load_options(*spec.key_files)
        except ValueError as error:
            raise usage.UsageError(f"--listen {description}: {error}") from None
        return spec

    def config(self) -> Config:
        """The broker's settings from these options."""
        return Config(
            max_clients=self["max-clients"],
            idle_timeout=self["idle-timeout"],
            max_message=self["max-message"],
            max_line=self["max-line"],
            files=self["files"],
            history=self["history"],
            stream_limit=self["stream-limit"],
            max_gen=self["max-gen"],
            ttr=self["ttr"],
            max_deliveries=self["max-deliveries"],
            max_upload=self["max-upload"],
            max_pending_input=self["max-pending-input"],
            login_limit=self["login-limit"],
            login_limit_global=self["login-limit-global"],
            register_limit=self["register-limit"],
            register_limit_global=self["register-limit-global"],
            udp_trusted=parse_trusted(self["udp-trusted"]),
            allow_plaintext_auth=bool(self["allow-plaintext-auth"]),
            node_lease=self["node-lease"],
        )


def _check_endpoint(option: str, description: str) -> None:
    """UsageError unless ``description`` is a server endpoint Twisted can build (its files readable)."""
    from twisted.internet import reactor

    try:
        serverFromString(reactor, description)
    except (ValueError, TypeError, KeyError, OSError) as error:
        raise usage.UsageError(f"{option} {description}: {error}") from None
    except Exception as error:  # e.g. OpenSSL's Error for a key that does not match its certificate
        raise usage.UsageError(f"{option} {description}: {type(error).__name__}: {error}") from None


def makeService(options: Options, reactor: IReactorTime | None = None) -> IServiceCollection:
    """The msgsvc application: one broker, served over TCP and UDP.

    twistd calls this before it daemonizes, so the store is opened and the
    ports bound only when the application starts, in the process that serves.
    Here they are only tried (see :func:`msgsvc.startup.preflight`), so that
    the usual failures end the command at once with one line.
    """
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    try:
        preflight(options, reactor)
    except StartupError as error:
        raise SystemExit(f"msgsvc: {error}") from None
    if not os.path.isdir(options["files"]):
        log.warn("--files {files}: no such directory; LIST will be empty", files=options["files"], category="ERROR")
    service = MultiService() if options["event-log"] is None else EventLogService(options["event-log"])
    listeners = ListenerService(
        IReactorTCP(reactor), options["interface"], options["port"], None, None, options.listens
    )
    listeners.setName("listeners")
    broker_service = BrokerService()
    broker_service.setName("broker")
    web = None if options["web"] is None else WebService(IReactorCore(reactor), options["web"])
    if web is not None:
        web.setName("web")
    startup = StartupService(options, reactor, listeners, broker_service, web)
    startup.setName("startup")
    # The broker is last so it is stopped first: clients hear BYE before the ports close.
    for child in (startup, listeners, web, broker_service):
        if child is not None:
            child.setServiceParent(service)
    return service
