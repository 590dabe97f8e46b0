# -*- test-case-name: tests.test_errors -*-
"""The one table from the domain's error types to the wire's error codes (SPEC section 6)."""

from __future__ import annotations

from msgsvc.domain import errors
from msgsvc.protocol.wire import Err

CODES: dict[type[errors.DomainError], str] = {
    errors.InvalidRequest: "bad-args",
    errors.TooBig: "too-big",
    errors.TooLong: "too-long",
    errors.Full: "full",
    errors.Empty: "empty",
    errors.NoName: "no-name",
    errors.NameTaken: "name-taken",
    errors.NoFile: "no-file",
    errors.NotLoggedIn: "not-logged-in",
    errors.NoUser: "no-user",
    errors.AuthFailed: "auth",
    errors.InUse: "in-use",
    errors.Exists: "exists",
    errors.NoThread: "no-thread",
    errors.NoMessage: "no-msg",
    errors.NotOwner: "not-owner",
}
"""Each domain error type and the code its ``ERR`` reply carries."""

FRAMING_CODES = {
    "unknown-command": "no such verb: the command table refuses it before any handler runs",
    "bad-args": "also arguments that do not bind to the verb's parameters",
    "line-too-long": "a command line over --max-line, refused by the front end's framing",
    "too-big": "also a literal over its verb's limit, refused by the front end's framing",
    "internal": "a bug: any other exception, logged with its traceback",
    "tls-required": "LOGIN/REGISTER off-host without TLS (not produced yet: TLS listeners are still to come)",
}
"""Codes (also) produced outside the domain, and by what."""


def reply_for(error: errors.DomainError | errors.Refused) -> Err:
    """The ``ERR`` reply for a domain error."""
    if isinstance(error, errors.Refused):
        return Err(error.code, error.text)
    for kind in type(error).__mro__:
        code = CODES.get(kind)
        if code is not None:
            return Err(code, error.text)
    raise TypeError(f"{type(error).__name__} has no error code")
