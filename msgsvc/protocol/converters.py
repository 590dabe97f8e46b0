"""Argument converters of the wire (queue names, ids, waits): each returns the value or raises ValueError.

The rules for names and text that the domain enforces live in :mod:`msgsvc.domain.text`.
"""

from __future__ import annotations

import math
import re

_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")

MAX_WAIT = 3600.0


def queue_name(text: str) -> str:
    """A queue name: 1-64 of ``A-Za-z0-9_.-``, plus ``.dead`` for a dead-letter queue."""
    if not _SAFE_NAME.match(text.removesuffix(".dead")):
        raise ValueError("a queue name is 1-64 of A-Z a-z 0-9 _ . -")
    return text


def message_id(text: str) -> int:
    """A message id: a positive whole number."""
    if not (text.isascii() and text.isdigit() and 0 < len(text) <= 18 and int(text) > 0):
        raise ValueError(f"a message id is a positive whole number, not '{text}'")
    return int(text)


def wait_seconds(text: str) -> float:
    """Seconds to wait: a decimal number from 0 to 3600, fractions allowed."""
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"wait-seconds must be a number, not '{text}'") from None
    if not (math.isfinite(seconds) and 0 <= seconds <= MAX_WAIT):
        raise ValueError(f"wait-seconds must be from 0 to {MAX_WAIT:g}")
    return seconds
