# -*- test-case-name: tests.test_listen -*-
"""``--listen`` endpoint strings, as Twisted spells them: ``tcp:PORT`` and ``ssl:PORT:privateKey=KEY:certKey=CERT``.

A description is read into a :class:`ListenSpec` when the options are parsed
(a mistake is a usage error), and becomes a Twisted endpoint when the listeners
bind: a TCP endpoint (:func:`tcp_endpoint`), wrapped in TLS for ``ssl:`` with a
certificate that can be reloaded (:mod:`msgsvc.transports.tls`).
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.endpoints import quoteStringArgument, serverFromString, wrapServerTLS
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator, IStreamServerEndpoint
from twisted.internet.posixbase import PosixReactorBase

from msgsvc.transports.eager import EagerTCPEndpoint

LISTEN_BACKLOG = 511
"""Connections the kernel queues before they are accepted (as Redis and nginx); Twisted's 50 drops bursts."""
KEYWORDS = {"tcp": ("interface", "backlog"), "ssl": ("interface", "backlog", "privateKey", "certKey")}
"""The keyword arguments each endpoint type takes here."""


def tcp_description(port: int, interface: str, backlog: int = LISTEN_BACKLOG) -> str:
    """The ``tcp:`` endpoint string of a port on an interface."""
    return f"tcp:{port}:interface={quoteStringArgument(interface)}:backlog={backlog}"


def tcp_endpoint(reactor: object, port: int, interface: str, backlog: int = LISTEN_BACKLOG) -> IStreamServerEndpoint:
    """A TCP server endpoint whose connections send without epoll_ctl (:mod:`msgsvc.transports.eager`) on a reactor
    built on ``PosixReactorBase``; Twisted's ``tcp:`` endpoint on any other (a test's ``MemoryReactor``)."""
    if isinstance(reactor, PosixReactorBase):
        return EagerTCPEndpoint(reactor, port, interface, backlog)
    endpoint: IStreamServerEndpoint = serverFromString(reactor, tcp_description(port, interface, backlog))
    return endpoint


@dataclass(frozen=True)
class ListenSpec:
    """One ``--listen`` listener: a TCP port, with TLS when it has key files."""

    description: str
    """As given on the command line."""
    port: int
    interface: str = "0.0.0.0"
    """Twisted's default: every IPv4 address."""
    backlog: int = LISTEN_BACKLOG
    key_files: tuple[str, str] | None = None
    """``(privateKey, certKey)`` of an ``ssl:`` listener; None for ``tcp:``."""

    def endpoint(self, reactor: object, tls: IOpenSSLServerConnectionCreator | None) -> IStreamServerEndpoint:
        """The endpoint to listen on: TCP, wrapped in ``tls`` when given."""
        tcp = tcp_endpoint(reactor, self.port, self.interface, self.backlog)
        return tcp if tls is None else wrapServerTLS(tls, tcp)


def parse_listen(description: str) -> ListenSpec:
    """A ``--listen`` description as a ListenSpec; ValueError saying what is wrong with it (without the description)."""
    args, keywords = _fields(description)
    kind = args[0].lower()
    if kind not in KEYWORDS:
        raise ValueError("not a tcp: or ssl: endpoint")
    if len(args) != 2:
        raise ValueError(f"give one port number, as in {kind}:55557")
    unknown = sorted(set(keywords) - set(KEYWORDS[kind]))
    if unknown:
        takes = ", ".join(f"{name}=" for name in KEYWORDS[kind])
        raise ValueError(f"{kind}: takes {takes}, not {unknown[0]}=")
    port = _number("port", args[1], 65535)
    backlog = _number("backlog", keywords.get("backlog", str(LISTEN_BACKLOG)), 65535)
    interface = keywords.get("interface", "0.0.0.0")
    key_files = None
    if kind == "ssl":
        private_key = keywords.get("privateKey", "server.pem")  # Twisted's defaults
        key_files = (private_key, keywords.get("certKey", private_key))
    return ListenSpec(description, port, interface, backlog, key_files)


def _number(name: str, text: str, highest: int) -> int:
    if not (text.isascii() and text.isdigit() and int(text) <= highest):
        raise ValueError(f"{name} must be a number from 0 to {highest}, not {text!r}")
    return int(text)


def _fields(description: str) -> tuple[list[str], dict[str, str]]:
    """Twisted's endpoint-string grammar: ``:`` separates fields, a field's first ``=`` makes it a keyword,
    and ``\\`` takes the next character as it is."""
    args: list[str] = []
    keywords: dict[str, str] = {}
    field = [""]

    def end_field() -> None:
        if len(field) == 1:
            args.append(field[0])
        else:
            keywords[field[0]] = field[1]

    characters = iter(description)
    for character in characters:
        if character == "\\":
            field[-1] += next(characters, "")
        elif character == ":":
            end_field()
            field = [""]
        elif character == "=" and len(field) == 1:
            field.append("")
        else:
            field[-1] += character
    end_field()
    return args, keywords
