# -*- test-case-name: tests.test_reliable -*-
"""The SQLite stores (``--store sqlite:PATH``): microblog, accounts and forum; queues in ``sqlite_queues``.

All of them share one database file (see ``database``), and uploaded files live
in a directory beside it (``PATH.files``).
"""

from __future__ import annotations

from itertools import count

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from msgsvc.store.blobs import FileStore
from msgsvc.store.database import Database
from msgsvc.store.interfaces import (
    Account,
    FileExists,
    ForumError,
    IAccountStore,
    IForumStore,
    ITweetStore,
    NoMessage,
    NoThread,
    NotOwner,
    Post,
    Tweet,
    Upload,
)
from msgsvc.store.registry import Stores
from msgsvc.store.sqlite_queues import SqliteQueueStore


def open_stores(url: str, clock: IReactorTime) -> Stores:
    """The stores of ``--store sqlite:PATH``; StoreError with a one-line reason if the file cannot be used."""
    path = url[len("sqlite:") :]
    db = Database(path, clock)
    files = FileStore(path + ".files", durable=True)
    forum = SqliteForumStore(db)
    files.sweep(keep=forum.blobs())

    def close() -> None:
        db.close()
        files.close()

    return Stores(
        queues=SqliteQueueStore(db),
        tweets=SqliteTweetStore(db),
        accounts=SqliteAccountStore(db),
        forum=forum,
        files=files,
        close=close,
        durability=db,
    )


@implementer(ITweetStore)
class SqliteTweetStore:
    """Microblog messages and their hashtag index as two tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def post(self, author: str, text: str, tags: frozenset[str]) -> Deferred[int]:
        cursor = self._db.write("INSERT INTO tweets (author, text) VALUES (?, ?)", (author, text))
        tweet_id = cursor.lastrowid
        assert tweet_id is not None  # set by a successful INSERT
        for tag in sorted(tags):
            self._db.write("INSERT INTO tweet_tags (tag, tweet_id) VALUES (?, ?)", (tag, tweet_id))
        return succeed(tweet_id)

    def last(self) -> Deferred[Tweet | None]:
        row = self._db.read("SELECT id, author, text FROM tweets ORDER BY id DESC LIMIT 1").fetchone()
        return succeed(Tweet(*row) if row else None)

    def tagged(self, tag: str, limit: int) -> Deferred[list[Tweet]]:
        rows = self._db.read(
            "SELECT t.id, t.author, t.text FROM tweet_tags g JOIN tweets t ON t.id = g.tweet_id"
            " WHERE g.tag = ? ORDER BY g.tweet_id DESC LIMIT ?",
            (tag, limit),
        ).fetchall()
        return succeed([Tweet(*row) for row in rows])


@implementer(IAccountStore)
class SqliteAccountStore:
    """Accounts keyed by the case-folded name; only the password hash is stored."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get_account(self, name: str) -> Deferred[Account | None]:
        row = self._db.read("SELECT name, password_hash FROM accounts WHERE folded = ?", (name.casefold(),)).fetchone()
        return succeed(Account(*row) if row else None)

    def add_account(self, account: Account) -> Deferred[bool]:
        cursor = self._db.write(
            "INSERT OR IGNORE INTO accounts (folded, name, password_hash) VALUES (?, ?, ?)",
            (account.name.casefold(), account.name, account.password_hash),
        )
        return succeed(cursor.rowcount == 1)


@implementer(IForumStore)
class SqliteForumStore:
    """Threads and their entries (messages and uploads) in posting order.

    A message's number is its rank among the thread's messages, so deleting one
    renumbers the later ones without rewriting them.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def blobs(self) -> set[str]:
        """Every file key an upload refers to."""
        return {blob for (blob,) in self._db.read("SELECT blob FROM entries WHERE blob IS NOT NULL")}

    def create_thread(self, title: str, creator: str) -> Deferred[bool]:
        cursor = self._db.write("INSERT OR IGNORE INTO threads (title, creator) VALUES (?, ?)", (title, creator))
        return succeed(cursor.rowcount == 1)

    def titles(self) -> Deferred[list[str]]:
        return succeed([title for (title,) in self._db.read("SELECT title FROM threads ORDER BY id")])

    def add_post(self, title: str, user: str, text: str) -> Deferred[int]:
        try:
            thread, _ = self._thread(title)
        except NoThread as error:
            return fail(error)
        self._db.write("INSERT INTO entries (thread, user, text) VALUES (?, ?, ?)", (thread, user, text))
        (number,) = self._db.read(
            "SELECT COUNT(*) FROM entries WHERE thread = ? AND file IS NULL", (thread,)
        ).fetchone()
        return succeed(number)

    def edit_post(self, title: str, number: int, user: str, text: str) -> Deferred[None]:
        try:
            entry = self._own_post(title, number, user)
        except ForumError as error:
            return fail(error)
        self._db.write("UPDATE entries SET text = ? WHERE id = ?", (text, entry))
        return succeed(None)

    def delete_post(self, title: str, number: int, user: str) -> Deferred[None]:
        try:
            entry = self._own_post(title, number, user)
        except ForumError as error:
            return fail(error)
        self._db.write("DELETE FROM entries WHERE id = ?", (entry,))
        return succeed(None)

    def entries(self, title: str) -> Deferred[list[Post | Upload]]:
        try:
            thread, _ = self._thread(title)
        except NoThread as error:
            return fail(error)
        found: list[Post | Upload] = []
        numbers = count(1)
        for user, text, file, blob in self._db.read(
            "SELECT user, text, file, blob FROM entries WHERE thread = ? ORDER BY id", (thread,)
        ):
            found.append(Upload(user, file, blob) if file is not None else Post(next(numbers), user, text))
        return succeed(found)

    def add_upload(self, title: str, upload: Upload) -> Deferred[None]:
        try:
            thread, _ = self._thread(title)
        except NoThread as error:
            return fail(error)
        cursor = self._db.write(
            "INSERT OR IGNORE INTO entries (thread, user, file, blob) VALUES (?, ?, ?, ?)",
            (thread, upload.user, upload.file, upload.blob),
        )
        return succeed(None) if cursor.rowcount == 1 else fail(FileExists(upload.file))

    def find_upload(self, title: str, file: str) -> Deferred[Upload | None]:
        try:
            thread, _ = self._thread(title)
        except NoThread as error:
            return fail(error)
        row = self._db.read(
            "SELECT user, file, blob FROM entries WHERE thread = ? AND file = ?", (thread, file)
        ).fetchone()
        return succeed(Upload(*row) if row else None)

    def remove_thread(self, title: str, user: str) -> Deferred[list[str]]:
        try:
            thread, creator = self._thread(title)
        except NoThread as error:
            return fail(error)
        if creator != user:
            return fail(NotOwner(title))
        blobs = [
            blob
            for (blob,) in self._db.read("SELECT blob FROM entries WHERE thread = ? AND blob IS NOT NULL", (thread,))
        ]
        self._db.write("DELETE FROM entries WHERE thread = ?", (thread,))
        self._db.write("DELETE FROM threads WHERE id = ?", (thread,))
        return succeed(blobs)

    def _thread(self, title: str) -> tuple[int, str]:
        row = self._db.read("SELECT id, creator FROM threads WHERE title = ?", (title,)).fetchone()
        if row is None:
            raise NoThread(title)
        return row

    def _own_post(self, title: str, number: int, user: str) -> int:
        thread, _ = self._thread(title)
        row = self._db.read(
            "SELECT id, user FROM entries WHERE thread = ? AND file IS NULL ORDER BY id LIMIT 1 OFFSET ?",
            (thread, number - 1),
        ).fetchone()
        if row is None or number < 1:
            raise NoMessage(number)
        if row[1] != user:
            raise NotOwner(number)
        return row[0]
