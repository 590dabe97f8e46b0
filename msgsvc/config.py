"""Server limits and settings, as given on the command line (see ``msgsvc.tap``)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@dataclass(frozen=True)
class Config:
    """Every tunable the broker and the front ends consult."""

    max_clients: int = 3
    """Cap on TCP connections, UDP sessions and WebSocket clients together; 0 means no cap."""
    idle_timeout: float = 600.0
    """Seconds without a complete command before a client is let go."""
    max_message: int = 1048576
    """Largest payload (message, literal) accepted, in bytes."""
    max_line: int = 8192
    """Longest command line accepted, in bytes (line ending excluded)."""
    files: str = "data"
    """Directory served by LIST and GET."""
    history: int = 1000
    """Gone clients remembered for STATUS."""
    stream_limit: int = 1000
    """Most packets one STREAM may ask for."""
    max_gen: int = 123456789
    """Largest GEN, in bytes."""
    ttr: float = 60.0
    """Seconds a reservation lasts before its message is ready again."""
    max_deliveries: int = 5
    """Reservations of one message before it moves to ``<queue>.dead``."""
    max_upload: int = 67108864
    """Largest forum upload accepted, in bytes."""
    max_pending_input: int = 64 << 20
    """Bytes of unfinished literals all TCP clients together may hold in memory."""
    login_limit: int = 10
    """Failed (or running) logins per minute from one address prefix (/24 IPv4, /56 IPv6); 0: no limit."""
    login_limit_global: int = 100
    """Failed (or running) logins per minute from all addresses together; 0: no limit."""
    register_limit: int = 20
    """Accounts registered per hour from one address prefix (/24 IPv4, /56 IPv6); 0: no limit."""
    register_limit_global: int = 200
    """Accounts registered per hour from all addresses together; 0: no limit."""
    password_cost: int = 14
    """log2 of scrypt's N for new password hashes (14: about 50 ms, 16 MiB); tests lower it."""
    allow_plaintext_auth: bool = False
    """Accept LOGIN and REGISTER from another host over a channel without TLS (``--allow-plaintext-auth``)."""
    node_lease: float = 10.0
    """Seconds a node of a shared store (Redis) stays registered without a heartbeat (``--node-lease``)."""
    udp_trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = LOOPBACK
    """UDP peers exempt from address validation (``--udp-trusted``); empty: nobody."""
