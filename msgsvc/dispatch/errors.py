# -*- test-case-name: tests.test_errors -*-
"""The one table from the domain's error types to the wire's error codes (docs/protocol.md, "Error codes").

Every code of the protocol is produced by an error type in :data:`CODES` (the
domain's, and :class:`~msgsvc.dispatch.plaintext_auth.TlsRequired`), or by what
:data:`FRAMING_CODES` names (or both); ``tests/test_errors.py`` checks that and that
every code is documented.
"""

from __future__ import annotations

from msgsvc.dispatch.plaintext_auth import TlsRequired
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
    TlsRequired: "tls-required",
}
"""Each domain error type and the code its ``ERR`` reply carries."""

FRAMING_CODES = {
    "unknown-command": "no such verb: the command table refuses it before any handler runs",
    "bad-args": "also arguments that do not bind to the verb's parameters, and a malformed tag",
    "line-too-long": "a command line over --max-line, refused by the front end's framing",
    "too-big": "also a literal over its verb's limit, unfinished input over the server's budget, "
    "or a reply too large for one UDP datagram, refused by the front end",
    "full": "also the client cap, answered by the front end to a new connection or UDP session",
    "internal": "any other exception (a bug, a store or disk that fails), logged with its traceback; a failed commit",
}
"""Codes (also) produced outside the domain, and by what."""


def reply_for(error: errors.DomainError) -> Err:
    """The ``ERR`` reply for a domain error."""
    for kind in type(error).__mro__:
        code = CODES.get(kind)
        if code is not None:
            return Err(code, error.text)
    raise TypeError(f"{type(error).__name__} has no error code")
