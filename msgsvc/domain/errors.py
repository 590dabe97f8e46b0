"""The ways a command can fail that the domain expects, as exception types.

The domain raises these with a text for people; it knows no wire codes. The
command table maps each type to its ``ERR`` code in one place,
:mod:`msgsvc.dispatch.errors`.
"""

from __future__ import annotations


class DomainError(Exception):
    """A command failed in an expected way and changed nothing; ``text`` says why, for people."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class InvalidRequest(DomainError):
    """The verb's rules refuse an argument: empty or multi-line text, a count over a limit, a name without a session."""


class TooBig(DomainError):
    """A message, upload, literal or reply over its limit."""


class TooLong(DomainError):
    """A text over its length limit: a microblog message over 150 characters, a forum post over --max-line bytes."""


class Full(DomainError):
    """The server holds as many of something as it will (clients, waiting receivers)."""


class Empty(DomainError):
    """No message in the queue."""


class NoName(DomainError):
    """Chat needs a name first."""


class NameTaken(DomainError):
    """Another client holds that name, or it is a forum account's."""


class NoFile(DomainError):
    """Not a file that can be served or downloaded."""


class NotLoggedIn(DomainError):
    """Forum verbs need a login (or the client left before its login or new account was complete)."""


class NoUser(DomainError):
    """No forum account has that name."""


class AuthFailed(DomainError):
    """Wrong password, or too many attempts (logins, new accounts) for now."""


class InUse(DomainError):
    """The account is logged in elsewhere, or this client already is."""


class Exists(DomainError):
    """An account, thread or file of that name exists already."""


class NoThread(DomainError):
    """No forum thread of that title."""


class NoMessage(DomainError):
    """No such message (a post number, or a reservation this client holds)."""


class NotOwner(DomainError):
    """Only the author of a message, or the creator of a thread, may do that."""
