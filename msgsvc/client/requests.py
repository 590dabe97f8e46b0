"""Writing commands: a line, with a literal when the last argument is bytes."""

from __future__ import annotations

import re

_LITERAL_MARKER = re.compile(r" \{[0-9]+\}\Z")


def encode_command(verb: str, *args: str, payload: bytes | None = None, tag: str | None = None) -> bytes:
    """One command; ``payload`` (any bytes) goes as a ``{N}`` literal after the other arguments.

    A last argument that would end the line like a literal marker (``see you at {2}``)
    is sent as a literal itself, so the server reads it as text.
    """
    if payload is None and args and _LITERAL_MARKER.search(" ".join([verb, *args])):
        payload = args[-1].encode()
        args = args[:-1]
    words = [verb, *args]
    if payload is not None:
        words.append(f"{{{len(payload)}}}")
    line = " ".join(words).encode()
    if tag is not None:
        line = b"#" + tag.encode() + b" " + line
    if b"\n" in line or b"\r" in line:
        raise ValueError("arguments must not contain line breaks; pass such data as payload")
    line += b"\r\n"
    return line if payload is None else line + payload + b"\r\n"
