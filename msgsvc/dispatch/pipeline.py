# -*- test-case-name: tests.test_pipeline,tests.test_pipeline_output,tests.test_tcp,tests.test_lifecycle -*-
"""A client's replies, whatever carries them: in request order, each after the commit it needs.

A front end frames requests, runs each through the command table and hands
the result to :meth:`ReplyPipeline.deliver`. Every request gets a slot, in
order; a slot's reply goes out once every reply before it has, and once the
changes made before it are committed (an :class:`~msgsvc.dispatch.table.Unconfirmed`
reply waits for ``durability.when_committed``: one wait per commit, not a
Deferred per reply). A reply nothing waits ahead of goes straight out. A
reply that ``closes`` (QUIT, a closing error) stops everything after it from
running, and the connection ends once it is out; a client with
MAX_PENDING_REPLIES outstanding is not read until they drain. How bodies,
events and flow control reach the client is :mod:`msgsvc.dispatch.output`.

The pipeline knows no socket and no Twisted transport: it talks to a
:class:`~msgsvc.dispatch.output.ReplySink`, which a stream front end (TCP,
TLS, a WebSocket) implements in a few lines. A front end that answers each
request on its own (UDP) has no order to keep: it uses :func:`answer_alone`
for the commit wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from msgsvc.dispatch.output import CHUNK, CLOSING, MAX_EVENT_BACKLOG, OUTPUT, PIPELINE, ReplySink, StreamOutput, release
from msgsvc.dispatch.table import INTERNAL_ERROR, Unconfirmed
from msgsvc.protocol.wire import Err, Reply, StreamedData

if TYPE_CHECKING:
    from msgsvc.store.interfaces import IDurability

__all__ = ["CHUNK", "MAX_EVENT_BACKLOG", "MAX_PENDING_REPLIES", "ReplyPipeline", "ReplySink", "answer_alone"]

log = Logger()

MAX_PENDING_REPLIES = 64
"""Replies a client may have outstanding before the server stops reading its commands."""


@dataclass(slots=True)
class _Slot:
    """A reply position in the pipeline, filled when its command completes."""

    tag: bytes | None
    reply: Reply | None = None
    unconfirmed: bool = False
    """The reply waits for the commit of the changes made before it."""


class ReplyPipeline(StreamOutput):
    """One client's replies in order, after their commits; the output below it is :class:`StreamOutput`.

    ``failed`` is for reading, like ``closing``, ``ended`` and ``output_paused``.
    """

    __slots__ = ("_awaiting_commit", "_durability", "_input_ended", "_joins", "_slots", "failed")

    def __init__(self, sink: ReplySink, durability: IDurability, joins: bool = False) -> None:
        """``joins``: the sink takes several whole replies in one write (a byte stream; not a WebSocket)."""
        super().__init__(sink)
        self._durability = durability
        self._joins = joins
        self.failed = False
        """A bug was reported (:meth:`fail`); the front end ignores further input."""
        self._slots: list[_Slot] = []
        """Replies in order; at most MAX_PENDING_REPLIES, so a list (56 bytes empty; a deque is 760) will do."""
        self._input_ended = False
        self._awaiting_commit = False

    @property
    def pending(self) -> int:
        """Replies outstanding: commands run (or running) whose reply has not been written."""
        return len(self._slots)

    # -- replies ---------------------------------------------------------------

    def deliver(self, result: Reply | Unconfirmed | Deferred[Reply], tag: bytes | None) -> None:
        """Give a command's result (from ``CommandTable.dispatch``) its place among the replies."""
        slots = self._slots
        if isinstance(result, Reply):
            if not slots and self._body is None and not self.ended:  # nothing ahead of it: out at once
                if result.closes or isinstance(result, StreamedData):
                    self._write_reply(result, tag)  # one that closes ends the pipeline
                    if self._body is not None:
                        self._flush()  # start streaming the body
                    return
                self.sink.write(result.encode(tag))  # every message's path: keep it short
                return
            if result.closes:
                self.closing = True  # after QUIT nothing more runs, though its reply may still wait its turn
            slots.append(_Slot(tag, result))
            self._flush()
        elif isinstance(result, Unconfirmed):
            if result.reply.closes:
                self.closing = True
            slots.append(_Slot(tag, result.reply, unconfirmed=True))
            if not self._awaiting_commit:
                self._awaiting_commit = True
                self._durability.when_committed(self._committed)
        else:
            slot = _Slot(tag)
            slots.append(slot)
            result.addCallbacks(self._completed, self._errored, callbackArgs=(slot,), errbackArgs=(slot,))
        if len(slots) >= MAX_PENDING_REPLIES:
            self._pause(PIPELINE)

    def closing_error(self, error: Err, tag: bytes | None) -> None:
        """Queue ``error`` behind the replies due, then close; nothing more is run or read."""
        self.closing = True
        self._pause(CLOSING)
        self.deliver(Err(error.code, error.text, closes=True), tag)

    def input_ended(self) -> None:
        """The client finished sending (a half-close): answer what it sent, then close."""
        self._input_ended = True
        try:
            self._flush()
        except Exception:
            self.fail(Failure())

    def fail(self, failure: Failure) -> None:
        """A bug, in the front end's framing or here: reported once; ERR internal after the replies due, then close."""
        if self.failed:
            return
        self.failed = True
        self.sink.log_failure(failure)
        if self.ended:
            return
        try:
            self.closing_error(INTERNAL_ERROR, None)
        except Exception as error:  # the same bug again, most likely: its traceback is logged above
            log.error("cannot answer ERR internal ({error!r}); dropping the connection", error=error, category="ERROR")
            self.abort()

    def _completed(self, reply: Reply, slot: _Slot) -> None:
        if self.ended:
            release(reply)  # it will never be sent
            return
        slot.reply = reply
        try:
            self._flush()
        except Exception:
            self.fail(Failure())

    def _errored(self, failure: Failure, slot: _Slot) -> None:
        """A command's Deferred failed (the table never lets one): a bug, answered ERR internal in its place."""
        log.failure("a reply failed", failure, category="ERROR")
        self._completed(INTERNAL_ERROR, slot)

    def _committed(self, error: Exception | None) -> None:
        """Every reply held so far may go: its changes are durable (or, on error, it becomes ERR internal)."""
        self._awaiting_commit = False
        for slot in self._slots:
            if slot.unconfirmed:
                slot.unconfirmed = False
                if error is not None:
                    release(slot.reply)
                    slot.reply = INTERNAL_ERROR
        try:
            self._flush()
        except Exception:
            self.fail(Failure())

    def _flush(self) -> None:
        """Write every completed reply at the head of the pipeline (those released together in one write, if joined)."""
        slots = self._slots
        joined: list[bytes] | None = [] if self._joins else None
        try:
            while not self.ended:
                if self._body is not None:
                    self._write_joined(joined)
                    if not self._pump():
                        return
                if not slots:
                    break
                slot = slots[0]
                reply = slot.reply
                if reply is None or slot.unconfirmed:
                    break
                slots.pop(0)
                if reply.closes or isinstance(reply, StreamedData):
                    self._write_joined(joined)
                    self._write_reply(reply, slot.tag)
                elif joined is not None:
                    joined.append(reply.encode(slot.tag))
                else:
                    self.sink.write(reply.encode(slot.tag))  # as in deliver: the common case, kept short
        finally:
            self._write_joined(joined)
        if self.ended:
            if slots:
                self._discard()  # what completes after the end is never sent: release it
            return
        if self._input_ended and not slots and self._body is None:
            self.end()  # half-closed by the client, and every reply is out
        elif len(slots) < MAX_PENDING_REPLIES:
            self._resume(PIPELINE)

    def _write_joined(self, joined: list[bytes] | None) -> None:
        if joined:
            self.sink.write(b"".join(joined))
            joined.clear()

    def resume_output(self) -> None:
        """The client took what was sent, so it is not idle; carry on."""
        self.output_paused = False
        self._backlog = 0
        try:
            self._progress()
            self._flush()
            if not self.output_paused:  # writing the body may have filled the buffer again
                self._resume(OUTPUT)
        except Exception:
            self.fail(Failure())

    def lost(self) -> None:
        """The connection is gone: drop what waits and release every body's source."""
        self.closing = self.ended = True
        self._discard()

    def _discard(self) -> None:
        super()._discard()
        for slot in self._slots:
            release(slot.reply)
        self._slots.clear()


def answer_alone(
    result: Reply | Unconfirmed | Deferred[Reply],
    durability: IDurability,
    answer: Callable[..., object],
    failed: Callable[..., object],
    *args: object,
) -> None:
    """The pipeline of a front end that answers each request on its own (a datagram): only the commit wait.

    ``answer(reply, *args)`` gets the reply at once when it is ready, after
    the commit when it is :class:`Unconfirmed` (ERR internal if the commit
    fails), or when its Deferred fires; ``failed(failure, *args)`` gets what
    ``answer`` raises after the commit or from the Deferred.
    """
    if isinstance(result, Reply):
        answer(result, *args)
    elif isinstance(result, Unconfirmed):
        reply = result.reply

        def committed(error: Exception | None) -> None:
            try:
                answer(reply if error is None else INTERNAL_ERROR, *args)
            except Exception:
                failed(Failure(), *args)

        durability.when_committed(committed)
    else:
        result.addCallback(answer, *args).addErrback(failed, *args)
