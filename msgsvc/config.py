"""Server limits and settings, as given on the command line (see ``msgsvc.tap``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    """Every tunable the broker and the front ends consult."""

    max_clients: int = 3
    """Cap on TCP connections plus UDP sessions; 0 means no cap."""
    idle_timeout: float = 600.0
    """Seconds without a complete command before a client is let go."""
    max_message: int = 1048576
    """Largest payload (message, literal) accepted, in bytes."""
    max_line: int = 8192
    """Longest command line accepted, in bytes (line ending excluded)."""
    max_upload: int = 67108864
    """Largest forum upload accepted, in bytes."""
    password_cost: int = 14
    """log2 of scrypt's N for new password hashes (14: about 50 ms, 16 MiB); tests lower it."""
