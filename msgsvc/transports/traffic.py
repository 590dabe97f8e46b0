"""Bytes a front end has carried, for the metrics: two integers, bumped where the bytes pass."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Traffic:
    """Bytes received from and sent to all clients of one front end since the server started."""

    received: int = 0
    sent: int = 0
