# -*- test-case-name: tests.test_accounts -*-
"""Forum accounts through ``twisted.cred``: salted scrypt hashes, one login per account.

* :func:`hash_password` / :func:`verify_password`: a self-describing record
  ``scrypt$<log2 N>$<r>$<p>$<salt>$<digest>``, so hashes made at another cost
  still verify. Hashing runs in a thread (``deferToThread``), never in the reactor.
* :class:`ScryptChecker`: an ``ICredentialsChecker`` over the account store; an
  unknown user is checked against a dummy record of the same cost, so it takes
  as long as a wrong password.
* :class:`ForumRealm`: gives a :class:`ForumUser` avatar and enforces one login
  per account; logging in names the session after the account.
* :class:`Accounts`: REGISTER / LOGIN / logout, the per-address throttle on
  failed logins, and the start-up import of a plaintext credentials file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword, UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from msgsvc.commands import Refused
from msgsvc.converters import chat_name
from msgsvc.session import Session
from msgsvc.store.interfaces import Account, IAccountStore

log = Logger()

SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
DIGEST_BYTES = 32
MIN_COST, MAX_COST = 1, 20

LOGIN_FAILURES = 5
"""Failed logins one client address may make within LOGIN_WINDOW seconds."""
LOGIN_WINDOW = 60.0

_PASSWORD = re.compile(r"[\x21-\x7e]{1,128}\Z")


def password(text: str) -> str:
    """A password: 1-128 printable ASCII characters without spaces (never echoed back)."""
    if not _PASSWORD.match(text):
        raise ValueError("a password is 1-128 printable ASCII characters without spaces")
    return text


# -- hashing ---------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _scrypt(secret: str, salt: bytes, cost: int, r: int, p: int) -> bytes:
    n = 1 << cost
    return hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=DIGEST_BYTES, maxmem=256 * n * r * p + (1 << 20)
    )


def hash_password(secret: str, cost: int) -> str:
    """A new salted scrypt record for ``secret`` (slow: call it in a thread)."""
    if not MIN_COST <= cost <= MAX_COST:
        raise ValueError(f"password cost must be from {MIN_COST} to {MAX_COST}")
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(secret, salt, cost, SCRYPT_R, SCRYPT_P)
    return f"scrypt${cost}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def dummy_hash(cost: int) -> str:
    """A record no password matches, as slow to check as a real one of this cost (made instantly)."""
    return f"scrypt${cost}${SCRYPT_R}${SCRYPT_P}${_b64(os.urandom(SALT_BYTES))}${_b64(os.urandom(DIGEST_BYTES))}"


def verify_password(record: str, secret: str) -> bool:
    """Whether ``secret`` matches the record, compared in constant time (slow: call it in a thread)."""
    scheme, cost, r, p, salt, digest = record.split("$")
    if scheme != "scrypt":
        raise ValueError(f"unknown password hash scheme {scheme!r}")
    actual = _scrypt(secret, base64.b64decode(salt), int(cost), int(r), int(p))
    return hmac.compare_digest(actual, base64.b64decode(digest))


# -- twisted.cred ------------------------------------------------------------


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


ThreadRunner = Callable[..., Deferred]


@implementer(ICredentialsChecker)
class ScryptChecker:
    """Checks a user name and password against the salted hashes of an account store."""

    credentialInterfaces = (IUsernamePassword,)

    def __init__(self, store: IAccountStore, cost: int, run_in_thread: ThreadRunner = deferToThread) -> None:
        self._store = store
        self._dummy = dummy_hash(cost)
        self.run_in_thread = run_in_thread

    def requestAvatarId(self, credentials: IUsernamePassword) -> Deferred[str]:
        """Fires with the account name as registered; fails with UnknownUser or UnauthorizedLogin."""
        secret = credentials.password
        return self._store.get_account(credentials.username).addCallback(self._verify, secret)

    def _verify(self, account: Account | None, secret: str) -> Deferred[str]:
        record = self._dummy if account is None else account.password_hash
        return self.run_in_thread(verify_password, record, secret).addCallback(self._verified, account)

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

    def set_name(self, session: Session, name: str) -> None: ...


@implementer(IRealm)
class ForumRealm:
    """Hands out forum avatars, at most one per account; the mind is the client's Session."""

    def __init__(self, names: Naming) -> None:
        self._names = names
        self._by_name: dict[str, ForumUser] = {}
        self._by_session: dict[Session, ForumUser] = {}

    def requestAvatar(self, avatarId: str, mind: Session, *interfaces: Any) -> tuple[Any, ForumUser, Callable]:
        """Log ``avatarId`` in on the session ``mind``; Refused ``in-use`` if it already is somewhere."""
        if IForumUser not in interfaces:
            raise NotImplementedError("the forum realm only gives IForumUser avatars")
        session = mind
        if not session.open:
            raise Refused("not-logged-in", "the client left before the login completed")
        current = self._by_session.get(session)
        if current is not None:
            raise Refused("in-use", f"this client is already logged in as {current.name}")
        if avatarId.casefold() in self._by_name:
            raise Refused("in-use", f"{avatarId} has already logged in")
        self._names.set_name(session, avatarId)
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


# -- throttling failed logins ----------------------------------------------------


class LoginThrottle:
    """At most ``limit`` failed (or still running) logins per client address in ``window`` seconds."""

    MAX_ADDRESSES = 10000

    def __init__(self, clock: IReactorTime, limit: int = LOGIN_FAILURES, window: float = LOGIN_WINDOW) -> None:
        self._clock = clock
        self._limit = limit
        self._window = window
        self._failures: dict[str, deque[float]] = {}
        self._running: dict[str, int] = {}

    def begin(self, host: str) -> None:
        """A login from ``host`` starts; Refused ``auth`` while the address is throttled."""
        failures = self._recent(host)
        if len(failures) + self._running.get(host, 0) >= self._limit:
            wait = failures[0] + self._window - self._clock.seconds() if failures else self._window
            raise Refused(
                "auth", f"too many failed logins from {host}; try again in {max(1, round(wait + 0.5))} seconds"
            )
        self._running[host] = self._running.get(host, 0) + 1

    def end(self, host: str, failed: bool) -> None:
        """The login begun from ``host`` is over."""
        running = self._running.get(host, 1) - 1
        if running:
            self._running[host] = running
        else:
            self._running.pop(host, None)
        if failed:
            if len(self._failures) >= self.MAX_ADDRESSES:
                self._forget_old()
            self._failures.setdefault(host, deque()).append(self._clock.seconds())

    def _recent(self, host: str) -> deque[float]:
        failures = self._failures.get(host, deque())
        horizon = self._clock.seconds() - self._window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            self._failures.pop(host, None)
        return failures

    def _forget_old(self) -> None:
        for host in list(self._failures):
            self._recent(host)


# -- the service the verbs use -----------------------------------------------------


class Accounts:
    """Registering, logging in and out; one login per account, throttled failures."""

    def __init__(
        self,
        store: IAccountStore,
        names: Naming,
        clock: IReactorTime,
        cost: int,
        run_in_thread: ThreadRunner = deferToThread,
    ) -> None:
        self._store = store
        self._cost = cost
        self.realm = ForumRealm(names)
        self.checker = ScryptChecker(store, cost, run_in_thread)
        self.portal = Portal(self.realm, [self.checker])
        self.throttle = LoginThrottle(clock)
        self._names = names
        self._logouts: dict[Session, Callable[[], None]] = {}
        self._registering: set[str] = set()
        """Per session with a LOGIN or REGISTER running: fires when the latest one is over."""

    @property
    def run_in_thread(self) -> ThreadRunner:
        """How slow hashing is run off the reactor (tests may run it in place)."""
        return self.checker.run_in_thread

    @run_in_thread.setter
    def run_in_thread(self, runner: ThreadRunner) -> None:
        self.checker.run_in_thread = runner

    def user(self, session: Session) -> Deferred[str]:
        """The session's account name; fails with Refused ``not-logged-in``.

        Commands pipelined after a LOGIN only run once it has settled (see
        ``Session.hold``), so they see its outcome.
        """
        return maybeDeferred(self._current, session)

    def _current(self, session: Session) -> str:
        user = self.realm.user_of(session)
        if user is None:
            raise Refused("not-logged-in", "log in first: LOGIN <user> <password> or REGISTER <user> <password>")
        return user.name

    def may_be_logged_in(self, session: Session) -> bool:
        """Whether the session is logged in or has a login running."""
        return session.held or self.realm.user_of(session) is not None

    def is_account(self, name: str) -> Deferred[bool]:
        """Whether ``name`` (ignoring case) is a registered account, or one being registered."""
        if name.casefold() in self._registering:
            return succeed(True)
        return self._store.get_account(name).addCallback(lambda account: account is not None)

    def login(self, session: Session, name: str, secret: str) -> Deferred[str]:
        """Log in through the portal; fires with the account name as registered."""
        return self._serially(session, self._login, session, name, secret)

    def register(self, session: Session, name: str, secret: str) -> Deferred[str]:
        """Create an account and log in to it; fires with its name."""
        return self._serially(session, self._register, session, name, secret)

    def session_closed(self, session: Session) -> None:
        """The client is gone: log its account out."""
        logout = self._logouts.pop(session, None)
        if logout is not None:
            user = self.realm.user_of(session)
            logout()
            log.info("forum user {user} logged out", user=user.name if user else "?", category="GENERAL")

    def import_credentials(self, pairs: Iterable[tuple[str, str]]) -> Deferred[tuple[int, int]]:
        """Hash and store ``(user, password)`` pairs now, in this thread (meant for start-up).

        Fires with (added, already present); present accounts keep their password.
        """
        accounts = [Account(name, hash_password(secret, self._cost)) for name, secret in pairs]
        added = gatherResults([self._store.add_account(account) for account in accounts], consumeErrors=True)
        return added.addCallback(lambda results: (sum(results), len(results) - sum(results)))

    # -- internals ---------------------------------------------------------------

    @staticmethod
    def _serially(session: Session, action: Callable[..., Deferred[str]], *args: Any) -> Deferred[str]:
        """Run a LOGIN or REGISTER; the client's later commands wait for its outcome."""
        result = maybeDeferred(action, *args)
        session.hold(result)
        return result

    def _check_not_logged_in(self, session: Session) -> None:
        current = self.realm.user_of(session)
        if current is not None:
            raise Refused("in-use", f"this client is already logged in as {current.name}")

    def _login(self, session: Session, name: str, secret: str) -> Deferred[str]:
        self._check_not_logged_in(session)
        host = session.peer[0]
        self.throttle.begin(host)
        attempt = self.portal.login(UsernamePassword(name, secret), session, IForumUser)
        return attempt.addCallbacks(self._logged_in, self._login_failed, (session, host), None, (name, host))

    def _logged_in(self, result: tuple[Any, ForumUser, Callable], session: Session, host: str) -> str:
        _, user, logout = result
        self.throttle.end(host, failed=False)
        self._logouts[session] = logout
        log.info("forum user {user} logged in (client {id})", user=user.name, id=session.id, category="GENERAL")
        return user.name

    def _login_failed(self, failure: Failure, name: str, host: str) -> Failure:
        bad = failure.check(UnknownUser, UnauthorizedLogin)
        self.throttle.end(host, failed=bool(bad))
        if bad is UnknownUser:
            log.info("login as unknown user {user} from {host}", user=name, host=host, category="GENERAL")
            raise Refused("no-user", f"there is no user {name}; REGISTER {name} <password> creates one")
        if bad is UnauthorizedLogin:
            log.info("wrong password for {user} from {host}", user=name, host=host, category="GENERAL")
            raise Refused("auth", "Invalid password")
        return failure

    def _register(self, session: Session, name: str, secret: str) -> Deferred[str]:
        self._check_not_logged_in(session)
        key = name.casefold()
        if key in self._registering:
            raise Refused("exists", f"the user {name} already exists")
        self._registering.add(key)
        created = self._store.get_account(name)
        created.addCallback(self._hash_new, session, name, secret)
        created.addCallback(self._store_new, session, name)
        return created.addBoth(self._registered, key)

    def _hash_new(self, existing: Account | None, session: Session, name: str, secret: str) -> Deferred[str]:
        if existing is not None:
            raise Refused("exists", f"the user {existing.name} already exists")
        holder = self._names.named(name)
        if holder is not None and holder is not session:
            raise Refused("name-taken", f"{name} is in use by a connected client")
        return self.run_in_thread(hash_password, secret, self._cost)

    def _store_new(self, record: str, session: Session, name: str) -> Deferred[str]:
        if not session.open:
            raise Refused("not-logged-in", "the client left before the account was created")
        return self._store.add_account(Account(name, record)).addCallback(self._enter_new, session, name)

    def _enter_new(self, added: bool, session: Session, name: str) -> str:
        if not added:
            raise Refused("exists", f"the user {name} already exists")
        log.info("forum user {user} registered", user=name, category="GENERAL")
        _, user, logout = self.realm.requestAvatar(name, session, IForumUser)
        self._logouts[session] = logout
        log.info("forum user {user} logged in (client {id})", user=name, id=session.id, category="GENERAL")
        return user.name

    def _registered(self, outcome: Any, key: str) -> Any:
        self._registering.discard(key)
        return outcome


def read_credentials(path: str) -> list[tuple[str, str]]:
    """The ``username password`` pairs of a credentials file (blank lines skipped).

    Raises ValueError naming the file and line for anything else; the message
    never contains a password.
    """
    try:
        with open(path, "rb") as source:
            data = source.read()
    except OSError as error:
        raise ValueError(f"cannot read credentials file {path}: {error.strerror}") from None
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.splitlines(), 1):
        where = f"{path} line {number}"
        try:
            fields = raw.decode("ascii").split()
        except UnicodeDecodeError:
            raise ValueError(f"{where}: not ASCII") from None
        if not fields:
            continue
        if len(fields) != 2:
            raise ValueError(f"{where}: expected 'username password'")
        name, secret = fields
        try:
            chat_name(name)  # user names follow the chat-name rule: logging in sets the name
            password(secret)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        if name.casefold() in seen:
            raise ValueError(f"{where}: the user {name} appears twice")
        seen.add(name.casefold())
        pairs.append((name, secret))
    return pairs
