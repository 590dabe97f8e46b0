# -*- test-case-name: tests.test_forum,tests.test_forum_threads,tests.test_forum_files -*-
"""The forum: threads of numbered messages and uploaded files, for logged-in accounts.

State lives behind :class:`~msgsvc.store.interfaces.IForumStore` (threads and
messages, atomic check-and-change), :class:`~msgsvc.store.interfaces.IAccountStore`
(see :mod:`msgsvc.domain.accounts.service`) and an :class:`~msgsvc.store.interfaces.IBlobStore`
(upload bytes; streamed uploads arrive through :mod:`msgsvc.domain.uploads`). A store
may answer at once or later (:mod:`msgsvc.store.answers`). Expected failures are the
types of :mod:`msgsvc.domain.errors` (the store's refusals translated into them); a file
store that cannot write is not one: its exception is left to fail the command, which
the command table logs with its traceback and answers as an internal error.
"""

from __future__ import annotations

import re
from typing import BinaryIO

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure

from msgsvc.config import Config
from msgsvc.domain import errors
from msgsvc.domain.accounts.realm import Naming, ThreadRunner
from msgsvc.domain.accounts.service import Accounts
from msgsvc.domain.session import Session
from msgsvc.domain.text import one_line
from msgsvc.domain.uploads import (
    DiscardingSink,
    PendingUpload,
    PendingUploads,
    RefusedUpload,
    UploadData,
    UploadSink,
)
from msgsvc.store import Stores
from msgsvc.store.answers import Answer, attempt
from msgsvc.store.interfaces import FileExists, IBlobStore, NoMessage, NoThread, NotOwner, Post, Upload
from msgsvc.store.parts import PartFile

log = Logger()

_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}\Z")
_NUMBER = re.compile(r"[0-9]{1,9}\Z")


def safe_name(text: str) -> str:
    """A thread title or file name: 1-64 of ``A-Za-z0-9_.-``, not starting with ``.``."""
    if not _SAFE_NAME.match(text):
        raise ValueError("titles and file names are 1-64 of A-Z a-z 0-9 _ . - and do not start with .")
    return text


def post_number(text: str) -> int:
    """A message number: a whole number from 1."""
    if not _NUMBER.match(text) or int(text) < 1:
        raise ValueError(f"a message number is a whole number from 1, not '{text[:20]}'")
    return int(text)


def post_text(raw: bytes, limit: int) -> str:
    """A message's text: non-empty UTF-8 on one line (else InvalidRequest), at most ``limit`` bytes (else TooLong)."""
    if not raw:
        raise errors.InvalidRequest("the message text is empty")
    if len(raw) > limit:
        raise errors.TooLong(f"message exceeds {limit} bytes")
    try:
        return one_line(raw)
    except ValueError as error:
        raise errors.InvalidRequest(f"the message text {error}") from None


class Forum:
    """Accounts, threads, messages and files; what the forum verbs call."""

    def __init__(
        self,
        stores: Stores,
        config: Config,
        clock: IReactorTime,
        names: Naming,
        run_in_thread: ThreadRunner = deferToThread,
    ) -> None:
        self.accounts = Accounts(stores.accounts, names, clock, config, run_in_thread)
        self._run_in_thread = run_in_thread
        self.store = stores.forum
        self._confirm = stores.durability.confirm
        self.files: IBlobStore = stores.files
        self._config = config
        self.pending_uploads = PendingUploads(clock)
        """Streamed uploads waiting for their UPD to run (it may be held behind a LOGIN)."""

    # -- accounts --------------------------------------------------------------

    def is_account(self, name: str) -> Deferred[bool]:
        """Whether ``name`` (ignoring case) is a registered forum account (NAME refuses those)."""
        return self.accounts.is_account(name)

    def session_closed(self, session: Session) -> None:
        """The client is gone (QUIT, disconnect, idle timeout): log its account out, drop its unclaimed uploads."""
        self.accounts.session_closed(session)
        self.pending_uploads.session_closed(session)

    # -- threads and messages ------------------------------------------------------

    def create_thread(self, session: Session, title: str) -> Deferred[None]:
        """Create a thread owned by the session's user."""
        d = self.accounts.user(session).addCallback(lambda user: self.store.create_thread(title, user))
        return d.addCallback(self._created, title)

    @staticmethod
    def _created(created: bool, title: str) -> None:
        if not created:
            raise errors.Exists(f"Thread {title} exists")

    def titles(self, session: Session) -> Deferred[list[str]]:
        """Every thread title, oldest first."""
        return self.accounts.user(session).addCallback(lambda _: self.store.titles())

    def post(self, session: Session, title: str, raw: bytes) -> Deferred[int]:
        """Post a message; fires with its number."""
        limit = self._config.max_line
        d = self.accounts.user(session).addCallback(
            lambda user: self.store.add_post(title, user, post_text(raw, limit))
        )
        return d.addErrback(self._refuse, title)

    def edit(self, session: Session, title: str, number: int, raw: bytes) -> Deferred[None]:
        """Replace the text of one of the user's own messages."""
        limit = self._config.max_line
        d = self.accounts.user(session).addCallback(
            lambda user: self.store.edit_post(title, number, user, post_text(raw, limit))
        )
        return d.addErrback(self._refuse, title, number)

    def delete(self, session: Session, title: str, number: int) -> Deferred[None]:
        """Delete one of the user's own messages; later ones renumber."""
        d = self.accounts.user(session).addCallback(lambda user: self.store.delete_post(title, number, user))
        return d.addErrback(self._refuse, title, number)

    def read(self, session: Session, title: str) -> Deferred[list[Post | Upload]]:
        """The thread's messages and uploads in posting order."""
        d = self.accounts.user(session).addCallback(lambda _: self.store.entries(title))
        return d.addErrback(self._refuse, title)

    def remove_thread(self, session: Session, title: str) -> Deferred[None]:
        """Remove a thread the user created, with its messages and files."""
        d = self.accounts.user(session).addCallback(lambda user: self.store.remove_thread(title, user))
        return d.addCallbacks(self._removed, self._refuse, callbackArgs=(title,), errbackArgs=(title,))

    def _removed(self, blobs: list[str], title: str) -> Deferred[None]:
        log.info("forum thread {title} removed with {n} files", title=title, n=len(blobs), category="GENERAL")
        # The files go once the removal is durable: a crash before that keeps the thread and its files.
        return succeed(None).addCallback(lambda _: self._confirm(None)).addCallback(self._delete, blobs)

    def _delete(self, _: None, blobs: list[str]) -> None:
        for blob in blobs:
            self._delete_blob(blob)

    def _delete_blob(self, blob: str) -> None:
        """Delete a blob in the background; a failure is logged."""
        attempt(self.files.delete, blob).addErrback(
            lambda failure: log.failure("could not delete an uploaded file", failure, category="ERROR")
        )

    # -- files ---------------------------------------------------------------------

    def upload_sink(self, session: Session) -> UploadSink | DiscardingSink:
        """Where an UPD literal goes: a part file, or nowhere when it will be refused anyway."""
        if not self.accounts.may_be_logged_in(session):
            return DiscardingSink(RefusedUpload(errors.NotLoggedIn("log in before uploading")))
        try:
            return UploadSink(self.files.begin(), session, self.pending_uploads)
        except OSError as error:  # the UPD handler raises it: logged with its traceback, answered as internal
            return DiscardingSink(RefusedUpload(error))

    def upload(self, session: Session, title: str, file: str, data: UploadData) -> Deferred[int]:
        """Store an upload (a streamed PendingUpload, or bytes from the command line); fires with its size."""
        if isinstance(data, RefusedUpload):
            raise data.error
        part = data.claim() if isinstance(data, PendingUpload) else None
        d = self.accounts.user(session).addCallback(self._keep, part, data, title, file)
        if part is not None:
            d.addErrback(self._drop_part, part)
        return d

    def _keep(
        self, user: str, part: PartFile | None, data: bytes | PendingUpload, title: str, file: str
    ) -> Deferred[int]:
        if part is None:
            assert isinstance(data, bytes)  # no part: the data came as bytes on the command line
            if len(data) > self._config.max_upload:
                raise errors.TooBig(f"file exceeds the {self._config.max_upload}-byte upload limit")
            part = self.files.begin()
            part.write(data)
        if part.size > self._config.max_upload:
            part.discard()
            raise errors.TooBig(f"file exceeds the {self._config.max_upload}-byte upload limit")
        size = part.size
        # Keeping a blob syncs it to disk on a durable local store: done off the event loop. If
        # that fails (OSError), the failure goes on to the command table, which logs it.
        kept = self._run_in_thread(self.files.keep, part) if self.files.blocking else attempt(self.files.keep, part)
        return kept.addCallback(self._record_upload, user, title, file, size)

    def _record_upload(self, blob: str, user: str, title: str, file: str, size: int) -> Deferred[int]:
        d = attempt(self.store.add_upload, title, Upload(user, file, blob))
        return d.addCallbacks(
            self._uploaded,
            self._upload_refused,
            callbackArgs=(user, title, file, size),
            errbackArgs=(blob, title, file),
        )

    @staticmethod
    def _uploaded(_: None, user: str, title: str, file: str, size: int) -> int:
        log.info(
            "forum user {user} uploaded {file} ({size} bytes) to {title}",
            user=user,
            file=file,
            size=size,
            title=title,
            category="GENERAL",
        )
        return size

    def _upload_refused(self, failure: Failure, blob: str, title: str, file: str) -> Failure:
        self._delete_blob(blob)
        return self._refuse(failure, title, file=file)

    @staticmethod
    def _drop_part(failure: Failure, part: PartFile) -> Failure:
        part.discard()  # already moved into place (or deleted) when the failure came later
        return failure

    def download(self, session: Session, title: str, file: str) -> Deferred[tuple[int, BinaryIO]]:
        """The size of an uploaded file and an open stream of its bytes (the caller closes it)."""
        d = self.accounts.user(session).addCallback(lambda _: self.store.find_upload(title, file))
        return d.addCallbacks(self._open, self._refuse, callbackArgs=(title, file), errbackArgs=(title,))

    def _open(self, upload: Upload | None, title: str, file: str) -> Answer[tuple[int, BinaryIO]]:
        if upload is None:
            raise errors.NoFile(f"{file} has not been uploaded to {title}")
        return self.files.open(upload.blob)

    @staticmethod
    def _refuse(failure: Failure, title: str, number: int | None = None, file: str | None = None) -> Failure:
        """Turn the store's refusals into domain errors; anything else passes."""
        if failure.check(NoThread):
            raise errors.NoThread(f"Thread {title} does not exist")
        if failure.check(NoMessage):
            raise errors.NoMessage(f"Thread {title} has no message {number}")
        if failure.check(NotOwner):
            if number is None:
                raise errors.NotOwner(f"Thread {title} was created by another user")
            raise errors.NotOwner(f"Message {number} in {title} belongs to another user")
        if failure.check(FileExists):
            raise errors.Exists(f"{file} has already been uploaded to {title}")
        return failure
