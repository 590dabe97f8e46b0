# -*- test-case-name: tests.test_accounts,tests.test_accounts_credentials -*-
"""Forum accounts: REGISTER, LOGIN and logout, one login per account, with rate limits.

The pieces live in modules below this one:

* :mod:`msgsvc.domain.accounts.passwords`: the password rule and salted scrypt hashes, made and
  checked in a thread (``deferToThread``), never in the reactor.
* :mod:`msgsvc.domain.accounts.realm`: the ``twisted.cred`` checker and the realm (one login per
  account; logging in names the session after the account).
* :mod:`msgsvc.domain.accounts.throttle`: failed logins (per minute) and accounts registered
  (per hour), limited per address prefix and for the whole server.

**Accounts own their names.** A guest (a client named by ``NAME`` without
logging in) never keeps an account's name from its account: ``REGISTER erin``
succeeds while a guest is named erin, and so does ``LOGIN erin``; the guest
loses the name (everyone named, the guest too, hears ``* LEAVE erin``, and the
guest has no name until it picks another), then the account's client takes it
(the others hear ``* JOIN erin``). ``NAME`` refuses account names, and names
being registered. Where the server attributes something to a name durably or
in a listing (tweet authors, ``WHO``, ``STATUS``) a guest shows as ``~name``
(see ``Session.display_name``), so it can never pass for the account.

:mod:`msgsvc.domain.accounts.credentials` reads the start-up ``--credentials`` file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure

from msgsvc.config import Config
from msgsvc.domain.accounts import passwords
from msgsvc.domain.accounts.realm import (
    ForumRealm,
    ForumUser,
    IForumUser,
    Naming,
    ScryptChecker,
    ThreadRunner,
    UnknownUser,
)
from msgsvc.domain.accounts.throttle import LOGIN_WINDOW, REGISTER_WINDOW, Throttle
from msgsvc.domain.errors import AuthFailed, Exists, InUse, NotLoggedIn, NoUser
from msgsvc.domain.session import Session
from msgsvc.store.answers import Answer, attempt, deferred, then
from msgsvc.store.interfaces import Account, IAccountStore

log = Logger()


class Accounts:
    """Registering, logging in and out; one login per account, failed logins and registrations throttled."""

    def __init__(
        self,
        store: IAccountStore,
        names: Naming,
        clock: IReactorTime,
        config: Config,
        run_in_thread: ThreadRunner = deferToThread,
    ) -> None:
        """Limits and the password cost come from ``config`` (``login_limit``, ``register_limit``...)."""
        self._store = store
        self._cost = config.password_cost
        self.realm = ForumRealm(names)
        self.checker = ScryptChecker(store, self._cost, run_in_thread)
        self.portal = Portal(self.realm, [self.checker])
        self.login_throttle = Throttle(
            clock, config.login_limit, config.login_limit_global, LOGIN_WINDOW, "failed logins"
        )
        """Failed (or still running) logins per minute, per prefix and in all."""
        self.register_throttle = Throttle(
            clock, config.register_limit, config.register_limit_global, REGISTER_WINDOW, "accounts registered"
        )
        """Accounts created (or being created) per hour, per prefix and in all."""
        self._logouts: dict[Session, Callable[[], None]] = {}
        self._registering: set[str] = set()
        """Case-folded names whose REGISTER runs now (from its checks until it is stored or fails).

        A second REGISTER of such a name fails with Exists, and ``is_account`` counts them, so NAME refuses them.
        """

    @property
    def run_in_thread(self) -> ThreadRunner:
        """How slow hashing is run off the reactor (tests may run it in place)."""
        return self.checker.run_in_thread

    @run_in_thread.setter
    def run_in_thread(self, runner: ThreadRunner) -> None:
        self.checker.run_in_thread = runner

    def user(self, session: Session) -> Deferred[str]:
        """The session's account name; fails with NotLoggedIn.

        Commands pipelined after a LOGIN only run once it has settled (see
        ``Session.hold``), so they see its outcome.
        """
        return maybeDeferred(self._current, session)

    def _current(self, session: Session) -> str:
        user = self.realm.user_of(session)
        if user is None:
            raise NotLoggedIn("log in first: LOGIN <user> <password> or REGISTER <user> <password>")
        return user.name

    def may_be_logged_in(self, session: Session) -> bool:
        """Whether the session is logged in or has a login running."""
        return session.held or self.realm.user_of(session) is not None

    def is_account(self, name: str) -> Deferred[bool]:
        """Whether ``name`` (ignoring case) is a registered account, or one being registered."""
        if name.casefold() in self._registering:
            return succeed(True)
        return deferred(self._store.get_account(name)).addCallback(lambda account: account is not None)

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
        accounts = [Account(name, passwords.hash_password(secret, self._cost)) for name, secret in pairs]
        added = gatherResults([attempt(self._store.add_account, account) for account in accounts], consumeErrors=True)
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
            raise InUse(f"this client is already logged in as {current.name}")

    def _login(self, session: Session, name: str, secret: str) -> Deferred[str]:
        self._check_not_logged_in(session)
        host = session.peer[0]
        key = self.login_throttle.begin(host)
        # Twisted's stub types cred's names and passwords as bytes; cred hands them to our checker untouched.
        credentials = UsernamePassword(name, secret)  # type: ignore[arg-type]
        login = self.portal.login(credentials, session, IForumUser)
        return login.addCallbacks(
            self._logged_in, self._login_failed, callbackArgs=(session, key), errbackArgs=(name, host, key)
        )

    def _logged_in(self, result: tuple[Any, ForumUser, Callable], session: Session, key: str) -> str:
        _, user, logout = result
        self.login_throttle.end(key, counted=False)
        self._logouts[session] = logout
        log.info("forum user {user} logged in (client {id})", user=user.name, id=session.id, category="GENERAL")
        return user.name

    def _login_failed(self, failure: Failure, name: str, host: str, key: str) -> Failure:
        bad = failure.check(UnknownUser, UnauthorizedLogin)
        self.login_throttle.end(key, counted=bool(bad))
        if bad is UnknownUser:
            log.info("login as unknown user {user} from {host}", user=name, host=host, category="GENERAL")
            raise NoUser(f"there is no user {name}; REGISTER {name} <password> creates one")
        if bad is UnauthorizedLogin:
            log.info("wrong password for {user} from {host}", user=name, host=host, category="GENERAL")
            raise AuthFailed("Invalid password")
        return failure

    def _register(self, session: Session, name: str, secret: str) -> Deferred[str]:
        self._check_not_logged_in(session)
        folded = name.casefold()
        if folded in self._registering:
            raise Exists(f"the user {name} already exists")
        key = self.register_throttle.begin(session.peer[0])
        self._registering.add(folded)
        hashed = attempt(self._store.get_account, name).addCallback(self._hash_new, name, secret)
        created = hashed.addCallback(self._store_new, session, name)
        return created.addBoth(self._registered, folded, key)

    def _hash_new(self, existing: Account | None, name: str, secret: str) -> Deferred[str]:
        if existing is not None:
            raise Exists(f"the user {existing.name} already exists")
        # A guest holding the name does not stop the account: the realm takes the name from it.
        return self.run_in_thread(passwords.hash_password, secret, self._cost)

    def _store_new(self, record: str, session: Session, name: str) -> Deferred[str]:
        if not session.open:
            raise NotLoggedIn("the client left before the account was created")
        return deferred(self._store.add_account(Account(name, record))).addCallback(self._enter_new, session, name)

    def _enter_new(self, added: bool, session: Session, name: str) -> Answer[str]:
        if not added:
            raise Exists(f"the user {name} already exists")
        log.info("forum user {user} registered from {host}", user=name, host=session.peer[0], category="GENERAL")
        return then(self.realm.requestAvatar(name, session, IForumUser), self._entered_new, session, name)

    def _entered_new(self, avatar: tuple[Any, ForumUser, Callable], session: Session, name: str) -> str:
        _, user, logout = avatar
        self._logouts[session] = logout
        log.info("forum user {user} logged in (client {id})", user=name, id=session.id, category="GENERAL")
        return user.name

    def _registered(self, outcome: Any, folded: str, key: str) -> Any:
        self._registering.discard(folded)
        self.register_throttle.end(key, counted=not isinstance(outcome, Failure))
        return outcome
