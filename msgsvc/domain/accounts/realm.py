# -*- test-case-name: tests.test_accounts,tests.test_accounts_passwords -*-
"""The ``twisted.cred`` pieces of the forum: the password checker and the realm.

* :class:`ScryptChecker`: an ``ICredentialsChecker`` over the account store; an
  unknown user is checked against a dummy record of the same cost, so it takes
  as long as a wrong password.
* :class:`ForumRealm`: gives a :class:`ForumUser` avatar and enforces one login
  per account. Accounts own their names: logging in gives the session the
  account's name, taking it from a guest (a client named by ``NAME``) that holds it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from zope.interface import Attribute, Interface, implementer

from msgsvc.domain.accounts import passwords
from msgsvc.domain.cluster import ICluster
from msgsvc.domain.errors import InUse, NotLoggedIn
from msgsvc.domain.session import Session
from msgsvc.store.answers import Answer, deferred, then
from msgsvc.store.interfaces import Account, IAccountStore

ThreadRunner = Callable[..., Deferred]


class NameAndPassword(Protocol):
    """What the checker reads of its ``IUsernamePassword`` credentials: an account name and a password, as text."""

    username: str
    password: str


class UnknownUser(UnauthorizedLogin):
    """No account has that name."""


class IForumUser(Interface):
    """A logged-in forum user: the avatar the realm hands out."""

    name = Attribute("The account name, spelt as registered.")
    session = Attribute("The session it is logged in on.")


@implementer(IForumUser)
@dataclass(eq=False)
class ForumUser:
    """The avatar of a logged-in account."""

    name: str
    session: Session


@implementer(ICredentialsChecker)
class ScryptChecker:
    """Checks a user name and password against the salted hashes of an account store."""

    credentialInterfaces = (IUsernamePassword,)

    def __init__(self, store: IAccountStore, cost: int, run_in_thread: ThreadRunner = deferToThread) -> None:
        self._store = store
        self._dummy = passwords.dummy_hash(cost)
        self.run_in_thread = run_in_thread

    # Twisted's stub types avatar ids as bytes; cred passes ours (str account names) to the realm untouched.
    def requestAvatarId(self, credentials: NameAndPassword) -> Deferred[str]:  # type: ignore[override]
        """Fires with the account name as registered; fails with UnknownUser or UnauthorizedLogin."""
        secret = credentials.password
        return deferred(self._store.get_account(credentials.username)).addCallback(self._verify, secret)

    def _verify(self, account: Account | None, secret: str) -> Deferred[str]:
        record = self._dummy if account is None else account.password_hash
        return self.run_in_thread(passwords.verify_password, record, secret).addCallback(self._verified, account)

    @staticmethod
    def _verified(matches: bool, account: Account | None) -> str:
        if account is None:
            raise UnknownUser()
        if not matches:
            raise UnauthorizedLogin()
        return account.name


class Naming(Protocol):
    """What the realm needs of the chat room: the shared registry of client names."""

    def named(self, name: str) -> Session | None: ...

    cluster: ICluster
    """The other nodes: one login per account and one holder per name among all of them."""

    def claim(self, session: Session, name: str, elsewhere: bool = False) -> None: ...


@implementer(IRealm)
class ForumRealm:
    """Hands out forum avatars, at most one per account; the mind is the client's Session."""

    def __init__(self, names: Naming) -> None:
        self._names = names
        self._by_name: dict[str, ForumUser] = {}
        self._by_session: dict[Session, ForumUser] = {}

    # Twisted's stub types avatar ids as bytes and the mind as any object; ours are account names and Sessions.
    def requestAvatar(  # type: ignore[override]
        self, avatarId: str, mind: Session, *interfaces: Any
    ) -> Answer[tuple[Any, ForumUser, Callable[[], None]]]:
        """Log ``avatarId`` in on the session ``mind``; InUse if it (or the session) already is logged in.

        On any node: the login is claimed across nodes first. The session then
        takes the account's name (``ChatRoom.claim``): a guest holding that
        name, on any node, loses it, since accounts own their names.
        """
        if IForumUser not in interfaces:
            raise NotImplementedError("the forum realm only gives IForumUser avatars")
        session = mind
        self._check(avatarId, session)
        cluster = self._names.cluster
        return then(then(cluster.claim_login(session, avatarId), self._claimed, avatarId, session), self._enter)

    def _check(self, avatarId: str, session: Session) -> None:
        if not session.open:
            raise NotLoggedIn("the client left before the login completed")
        current = self._by_session.get(session)
        if current is not None:
            raise InUse(f"this client is already logged in as {current.name}")
        if avatarId.casefold() in self._by_name:
            raise InUse(f"{avatarId} has already logged in")

    def _claimed(self, taken: bool, avatarId: str, session: Session) -> Answer[tuple[bool, str, Session]]:
        if not taken:
            raise InUse(f"{avatarId} has already logged in")
        try:
            self._check(avatarId, session)  # again: the claim may have answered later
        except NotLoggedIn:
            self._names.cluster.release_login(session, avatarId)
            raise
        elsewhere = self._names.cluster.take_name(session, avatarId)
        return then(elsewhere, lambda held: (held, avatarId, session))

    def _enter(self, taken: tuple[bool, str, Session]) -> tuple[Any, ForumUser, Callable[[], None]]:
        elsewhere, avatarId, session = taken
        session.account = avatarId
        self._names.claim(session, avatarId, elsewhere)
        user = ForumUser(avatarId, session)
        self._by_name[avatarId.casefold()] = user
        self._by_session[session] = user
        return IForumUser, user, lambda: self._logout(user)

    def user_of(self, session: Session) -> ForumUser | None:
        """Who is logged in on the session, if anyone."""
        return self._by_session.get(session)

    def _logout(self, user: ForumUser) -> None:
        if self._by_session.get(user.session) is user:
            del self._by_session[user.session]
            del self._by_name[user.name.casefold()]
            self._names.cluster.release_login(user.session, user.name)
