# -*- test-case-name: tests.test_chat,tests.test_forum,tests.test_forum_threads -*-
"""The rules for names and for text that others will read: each returns the value or raises ValueError."""

from __future__ import annotations

import re

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
