# -*- test-case-name: tests.test_reliable -*-
"""The SQLite database file: opening it safely, migrating it, and grouping commits.

One connection, owned by the reactor thread. The file is locked exclusively for
as long as the server runs, so a second msgsvc cannot open it. Changes apply at
once (later commands see them) and the writes made during one reactor turn
share one transaction. As the stores' :class:`IDurability`, the database says
when that transaction, holding every change made so far, has committed.

Durability: WAL journal with ``synchronous=NORMAL``. A committed transaction
survives the server process being killed (``kill -9``); an operating-system
crash or power loss may lose the last transactions committed before it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from msgsvc.store.interfaces import IDurability, StoreError
from msgsvc.turns import turn_end

log = Logger()

MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        "INSERT INTO schema_version VALUES (0)",
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            queue TEXT NOT NULL,
            position INTEGER NOT NULL,
            payload BLOB NOT NULL,
            enqueued_at REAL NOT NULL,
            ready_at REAL NOT NULL DEFAULT 0,
            deliveries INTEGER NOT NULL DEFAULT 0,
            reserved INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX messages_in_order ON messages (queue, reserved, position)",
    ],
    2: [
        "CREATE TABLE tweets (id INTEGER PRIMARY KEY AUTOINCREMENT, author TEXT NOT NULL, text TEXT NOT NULL)",
        "CREATE TABLE tweet_tags (tag TEXT NOT NULL, tweet_id INTEGER NOT NULL, PRIMARY KEY (tag, tweet_id))"
        " WITHOUT ROWID",
    ],
    3: [
        "CREATE TABLE accounts (folded TEXT PRIMARY KEY, name TEXT NOT NULL, password_hash TEXT NOT NULL)",
        "CREATE TABLE threads"
        " (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL UNIQUE, creator TEXT NOT NULL)",
        """CREATE TABLE entries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            thread INTEGER NOT NULL REFERENCES threads (id),
            user TEXT NOT NULL,
            text TEXT,
            file TEXT,
            blob TEXT
        )""",
        "CREATE INDEX entries_in_order ON entries (thread, id)",
        "CREATE INDEX posts_in_order ON entries (thread, id) WHERE file IS NULL",
        "CREATE UNIQUE INDEX uploads_by_name ON entries (thread, file) WHERE file IS NOT NULL",
    ],
}
"""Schema changes by version; version N turns a version N-1 database into version N."""

SCHEMA_VERSION = max(MIGRATIONS)


@implementer(IDurability)
class Database:
    """A msgsvc SQLite database, opened for this process alone."""

    def __init__(self, path: str, clock: IReactorTime) -> None:
        self.path = path
        self._clock = clock
        self._waiting: list[Callable[[Exception | None], None]] = []
        self._commit_queued = False
        self.pending = False
        """Whether changes made so far wait for the commit at the end of this reactor turn."""
        self._in_transaction = False
        self._before_commit: list[Callable[[], None]] = []
        self.commit_observers: list[Callable[[float], None]] = []
        """Told how many seconds each grouped commit took (flushes and COMMIT): the metrics' histogram."""
        if not os.path.exists(path):
            _create(path)
        self._connection = _open(path)

    def read(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run a query; it sees changes not yet committed."""
        return self._connection.execute(sql, params)

    def write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run a change inside the current grouped transaction (starting one if needed)."""
        self._begin()
        return self._connection.execute(sql, params)

    def write_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one change for many rows inside the current grouped transaction."""
        self._begin()
        self._connection.executemany(sql, rows)

    def changed(self) -> None:
        """Something changed: have the grouped commit run at the end of this reactor turn (once; :mod:`msgsvc.turns`).

        :meth:`write` calls it; a store that keeps a change in memory until the
        commit (see :meth:`before_commit`) calls it itself.
        """
        if not self._commit_queued:
            turn_end(self._clock).later(self.commit)
            self._commit_queued = True
            self.pending = True

    def before_commit(self, flush: Callable[[], None]) -> None:
        """Have ``flush`` write what it keeps in memory just before each commit."""
        self._before_commit.append(flush)

    def _begin(self) -> None:
        self.changed()
        if not self._in_transaction:
            self._connection.execute("BEGIN")
            self._in_transaction = True

    def confirm(self, value: Any) -> Any:
        """``value`` itself when nothing waits to commit, else a Deferred firing with it after the commit.

        If that commit fails, the Deferred fails with its error.
        """
        if not self.pending:
            return value
        result: Deferred = Deferred()
        self._waiting.append(lambda error: result.callback(value) if error is None else result.errback(error))
        return result

    def when_committed(self, callback: Callable[[Exception | None], None]) -> None:
        """Call ``callback(None)`` once the changes made so far are committed, or ``callback(error)`` if that fails.

        With nothing waiting to commit, the callback runs at once.
        """
        if self.pending:
            self._waiting.append(callback)
        else:
            callback(None)

    def commit(self) -> None:
        """Write what waits in memory, commit the grouped transaction, and confirm what waited for it."""
        if not self._commit_queued:
            return
        waiting, self._waiting = self._waiting, []
        started = time.perf_counter()
        try:
            for flush in self._before_commit:
                flush()
            if self._in_transaction:
                self._connection.execute("COMMIT")
        except sqlite3.Error as error:
            log.failure("commit to {path} failed", path=self.path, category="ERROR")
            self._connection.rollback()
            outcome: Exception | None = error
        else:
            outcome = None
        finally:
            self._in_transaction = False
            self._commit_queued = False
            self.pending = False
        took = time.perf_counter() - started
        for observe in self.commit_observers:
            observe(took)
        for callback in waiting:
            callback(outcome)

    def close(self) -> None:
        """Commit what is pending and release the file."""
        self.commit()
        self._connection.close()


def _create(path: str) -> None:
    """Create a new database atomically: built under a temporary name, then linked into place."""
    temporary = f"{path}.new-{os.getpid()}"
    try:
        connection = sqlite3.connect(temporary, isolation_level=None)
        try:
            connection.execute("BEGIN")
            _migrate(connection, 0)
            connection.execute("COMMIT")
        finally:
            connection.close()
        os.link(temporary, path)  # never replaces a file that appeared meanwhile
    except FileExistsError:
        pass
    except (OSError, sqlite3.Error) as error:
        raise StoreError(f"cannot create {path}: {error}") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _open(path: str) -> sqlite3.Connection:
    """Open, lock and migrate an existing database; StoreError with a one-line reason otherwise."""
    try:
        connection = sqlite3.connect(path, isolation_level=None, timeout=0)
    except sqlite3.Error as error:
        raise StoreError(f"cannot open {path}: {error}") from None
    try:
        connection.execute("PRAGMA locking_mode=EXCLUSIVE")  # locks are kept for as long as we run
        version = _version(connection, path)  # only reads: a file we refuse is left as it was
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{path} has schema version {version}, newer than this msgsvc understands ({SCHEMA_VERSION})"
            )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("BEGIN IMMEDIATE")
        _migrate(connection, version)
        connection.execute("UPDATE messages SET reserved = 0 WHERE reserved = 1")  # a restart ends reservations
        connection.execute("COMMIT")
    except StoreError:
        connection.close()
        raise
    except sqlite3.OperationalError as error:
        connection.close()
        if "locked" in str(error):
            raise StoreError(f"{path} is in use by another msgsvc process") from None
        raise StoreError(f"cannot use {path}: {error}") from None
    except sqlite3.DatabaseError as error:
        connection.close()
        raise StoreError(f"{path} is not a usable msgsvc database: {error}") from None
    return connection


def _version(connection: sqlite3.Connection, path: str) -> int:
    try:
        (version,) = connection.execute("SELECT version FROM schema_version").fetchone()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            raise StoreError(f"{path} is an SQLite database but not a msgsvc one") from None
        raise
    return version


def _migrate(connection: sqlite3.Connection, version: int) -> None:
    """Bring a database at ``version`` to SCHEMA_VERSION, inside the caller's transaction."""
    for step in range(version + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS[step]:
            connection.execute(statement)
        connection.execute("UPDATE schema_version SET version = ?", (step,))
        if version:
            log.info("migrated the database to schema version {step}", step=step, category="GENERAL")
