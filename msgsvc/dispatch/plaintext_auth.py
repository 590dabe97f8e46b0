# -*- test-case-name: tests.test_tls_required -*-
"""Who may send a password: LOGIN and REGISTER from another host need TLS (``ERR tls-required``).

A front end marks a session ``secure`` when its channel is TLS; a session nobody
marks is not. A peer on this machine (loopback) may log in over plain TCP or UDP,
and ``--allow-plaintext-auth`` lets everyone do so.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from msgsvc.domain.errors import DomainError

if TYPE_CHECKING:
    from msgsvc.config import Config
    from msgsvc.domain.session import Session

REFUSAL = "a password from another host needs TLS; connect to the server's TLS listener (--tls)"


class TlsRequired(DomainError):
    """A password from another host over a channel without TLS (``ERR tls-required``)."""


def is_loopback(host: str) -> bool:
    """Whether ``host``, an IP address as a transport reports it, is this machine's loopback."""
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def require_tls(config: Config, session: Session) -> None:
    """Raise :class:`TlsRequired` unless ``session`` may send a password over its channel."""
    if not (session.secure or config.allow_plaintext_auth or is_loopback(session.peer[0])):
        raise TlsRequired(REFUSAL)
