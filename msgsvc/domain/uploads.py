# -*- test-case-name: tests.test_forum_files -*-
"""Where UPD literals go while they arrive, and how long a complete one waits for its command.

The front ends stream a literal into the sink the UPD verb names (a
``LiteralSink``): an :class:`UploadSink` writes it to a part file of the file
store, a :class:`DiscardingSink` reads and drops one that will be refused
anyway. The finished literal is what the UPD handler gets as its data.

A finished part lives as a :class:`PendingUpload` until its command has run:

* the UPD handler claims it (and from then on keeps or deletes it);
* the command may wait, however long, behind a LOGIN or REGISTER still being
  checked (``Session.hold``): the part waits with it;
* once nothing holds the client's commands any more, its command has been
  dispatched (held commands are dispatched, in order, the moment the hold
  ends); a part still unclaimed on the next reactor turn belonged to a command
  that was refused before its handler ran (bad arguments, a closing
  connection) and is deleted;
* when the client leaves, its unclaimed parts are deleted at once.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime

from msgsvc.domain.session import Session
from msgsvc.store.parts import PartFile


class PendingUpload:
    """A streamed literal, complete on disk, that the UPD handler has not taken yet."""

    def __init__(self, part: PartFile, session: Session, pending: PendingUploads) -> None:
        self.part = part
        self.session = session
        self._pending = pending
        self.claimed = False

    def claim(self) -> PartFile:
        """Take the part; its fate is now the caller's."""
        self.claimed = True
        self._pending.forget(self)
        return self.part

    def discard_unclaimed(self) -> None:
        """Delete the part unless the handler took it."""
        if not self.claimed:
            self._pending.forget(self)
            self.part.discard()


class PendingUploads:
    """Every client's finished, unclaimed uploads, kept until their command has run (see the module)."""

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._by_session: dict[Session, dict[PendingUpload, None]] = {}

    def add(self, session: Session, part: PartFile) -> PendingUpload:
        """A finished part for the command the front end is about to dispatch."""
        pending = PendingUpload(part, session, self)
        self._by_session.setdefault(session, {})[pending] = None
        self._clock.callLater(0, self._check, pending)
        return pending

    def waiting(self, session: Session) -> int:
        """How many finished uploads of ``session`` wait for their command."""
        return len(self._by_session.get(session, ()))

    def forget(self, pending: PendingUpload) -> None:
        """The upload is claimed or deleted: stop tracking it."""
        mine = self._by_session.get(pending.session)
        if mine is not None:
            mine.pop(pending, None)
            if not mine:
                del self._by_session[pending.session]

    def session_closed(self, session: Session) -> None:
        """The client left: delete its unclaimed uploads now."""
        for pending in list(self._by_session.pop(session, ())):
            pending.discard_unclaimed()

    def _check(self, pending: PendingUpload) -> None:
        """Delete the part if its command ran without taking it; wait while the client's commands are held."""
        if pending.claimed:
            return
        waiting = pending.session.settled() if pending.session.open else None
        if waiting is None:
            pending.discard_unclaimed()
            return
        waiting.addCallback(lambda _: self._clock.callLater(0, self._check, pending))


class RefusedUpload:
    """What a sink that did not store the literal hands the UPD handler: why, as the exception the handler raises.

    A :class:`~msgsvc.domain.errors.DomainError` (the client is not logged in),
    or the error that kept the file store from taking the bytes (an OSError).
    """

    def __init__(self, error: Exception) -> None:
        self.error = error


UploadData = bytes | PendingUpload | RefusedUpload
"""What the UPD handler gets as its data: bytes from the command line, or what a sink made of a literal."""


class UploadSink:
    """Streams an UPD literal into a part file of the file store (a LiteralSink)."""

    def __init__(self, part: PartFile, session: Session, pending: PendingUploads) -> None:
        self._part = part
        self._session = session
        self._pending = pending

    def write(self, data: bytes) -> None:
        self._part.write(data)

    def finish(self) -> PendingUpload:
        self._part.close()
        return self._pending.add(self._session, self._part)

    def abort(self) -> None:
        self._part.discard()


class DiscardingSink:
    """Reads an UPD literal that will be refused, keeping none of it."""

    def __init__(self, refusal: RefusedUpload) -> None:
        self._refusal = refusal

    def write(self, data: bytes) -> None:
        pass

    def finish(self) -> RefusedUpload:
        return self._refusal

    def abort(self) -> None:
        pass
