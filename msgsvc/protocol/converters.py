"""Argument converters shared by the verb modules: each returns the value or raises ValueError."""

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


_CHAT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}\Z")


def chat_name(text: str) -> str:
    """A chat name: 1-32 of ``A-Za-z0-9_.-``."""
    if not _CHAT_NAME.match(text):
        raise ValueError("a name (chat name or forum user name) is 1-32 of A-Z a-z 0-9 _ . -")
    return text


RESERVED_ACCOUNTS = frozenset({"anonymous"})
"""Names no account may take: a microblog message without an author is written ``anonymous``."""


def account_name(text: str) -> str:
    """A forum user name: a chat name (logging in sets it) that is not reserved."""
    chat_name(text)
    if text.casefold() in RESERVED_ACCOUNTS:
        raise ValueError(f"the user name {text} is reserved")
    return text


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def one_line(text: bytes) -> str:
    """Text that others will see on one line (chat, microblog, forum posts).

    UTF-8 without control characters but TAB: no line breaks (replies and
    events are lines), no terminal escapes relayed to other people's screens.
    The ValueError's text completes a sentence: "<what> must be ...".
    """
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("must be UTF-8") from None
    if _CONTROL.search(decoded):
        raise ValueError("must be one line without control characters")
    return decoded
