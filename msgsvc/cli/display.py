# -*- test-case-name: tests.test_chat_cli,tests.test_forum_cli -*-
"""What the interactive clients show a person: events in words, and downloads saved to files."""

from __future__ import annotations

from collections.abc import Callable

from msgsvc.client.replies import Event


def describe(event: Event) -> str:
    """An event as a person reads it."""
    if event.name == "CHAT":
        speaker, _, text = event.args.partition(" ")
        return f"{speaker}: {text}"
    if event.name == "JOIN":
        return f"* {event.args} joined"
    if event.name == "LEAVE":
        return f"* {event.args} left"
    if event.name == "BYE":
        return f"* the server closed the session ({event.args})"
    return f"* {event.name} {event.args}"


def save(say: Callable[[str], None], target: str, payload: bytes) -> None:
    """Write a downloaded file; say how many bytes went where, or why it could not be written."""
    try:
        with open(target, "wb") as file:
            file.write(payload)
    except OSError as error:
        say(f"error: cannot write {target}: {error.strerror}")
        return
    say(f"saved {len(payload)} bytes to {target}")
