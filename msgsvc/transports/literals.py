# -*- test-case-name: tests.test_tcp,tests.test_tcp_literals,tests.test_input_budget -*-
"""Framing a TCP stream: request lines, and the ``{N}`` literal a line announces, read as its bytes arrive.

A literal goes one of three ways: to a sink (a forum upload streams to disk),
into memory (charged to the server-wide :class:`~msgsvc.transports.input_budget.InputBudget`
as its bytes arrive), or nowhere (a request refused anyway, or one whose
literal the budget could not hold: its bytes are read and dropped, so the
stream stays in step).

:class:`Framing` is the part of :class:`msgsvc.transports.tcp.Connection` that
splits its input into lines and literals and hands each request to the command table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from msgsvc.dispatch.commands import LiteralSink
from msgsvc.dispatch.pipeline import ReplyPipeline
from msgsvc.dispatch.table import CommandTable, Plan
from msgsvc.domain.broker import Broker
from msgsvc.domain.session import Session
from msgsvc.protocol.framing import line_too_long, literal_too_big
from msgsvc.protocol.wire import CRLF, Err, Request, parse_request
from msgsvc.transports.input_budget import InputBudget

LINES_AT_ONCE = 64
"""Lines split off a read at a time: bounds what one split makes, and what is split again after a pause
(reading pauses after 64 replies waiting, ``MAX_PENDING_REPLIES``)."""
OVER_BUDGET = Err("too-big", "the server holds too much unfinished input right now; try again later")
"""The reply to a literal skipped because all clients together hold --max-pending-input of unfinished input."""


class PendingLiteral:
    """The literal of one request, as far as it has arrived."""

    def __init__(self, request: Request, plan: Plan, sink: LiteralSink | None, keep: bool, budget: InputBudget) -> None:
        """``keep``: collect the bytes in memory (when there is no sink); otherwise they are dropped."""
        self.request = request
        self.plan = plan
        self.sink = sink
        self.keep = keep and sink is None
        self.budget = budget
        self.parts: list[bytes] = []
        size = request.literal_size
        assert size is not None  # a request announcing a literal
        self.missing = size
        self.charged = 0
        """Bytes of this literal charged to the budget."""
        self.over_budget = False
        """The budget could not hold it: skipped, to be answered ERR too-big."""

    @property
    def complete(self) -> bool:
        return not self.missing

    def feed(self, data: bytes) -> bytes:
        """Take the bytes that belong to the literal; returns those that follow it."""
        part = data[: self.missing]
        self.missing -= len(part)
        if self.sink is not None:
            self.sink.write(part)
        elif self.keep:
            if self.budget.charge(len(part)):
                self.charged += len(part)
                self.parts.append(part)
            else:
                self.over_budget = True
                self.keep = False
                self._release()
        return data[len(part) :]

    def finish(self) -> Request | None:
        """The request with its literal, once complete; None when it was skipped for the budget."""
        if self.over_budget:
            return None
        self.request.literal = self.sink.finish() if self.sink is not None else b"".join(self.parts)
        self._release()  # the bytes are the request's now, no longer unfinished input
        return self.request

    def abort(self) -> None:
        """The connection is gone before the literal was complete: give back what it held."""
        self._release()
        if self.sink is not None:
            self.sink.abort()
            self.sink = None

    def _release(self) -> None:
        self.budget.release(self.charged)
        self.charged = 0
        self.parts = []


def after_literal(expected: bytes, data: bytes) -> tuple[bytes, bytes]:
    """Consume the optional CRLF or LF after a literal, which may arrive in pieces.

    ``expected`` is the line ending that may still come (CRLF, or LF after a
    lone CR). Returns what may still come (b"" once settled) and the bytes
    that follow.
    """
    if not expected or not data:
        return expected, data
    if data.startswith(expected):
        return b"", data[len(expected) :]
    if expected == CRLF:
        if data.startswith(b"\n"):
            return b"", data[1:]
        if data == b"\r":
            return b"\n", b""
        return b"", data
    return b"", b"\r" + data  # the CR was not part of a line ending after all


class Framing:
    """The framing of :class:`msgsvc.transports.tcp.Connection`: lines, and the literal a line announces.

    A read's complete lines are split off 64 at a time by one ``bytes.split``
    (no copy of the rest per line, no Python search per line); a line with no
    tag and no literal whose verb the table compiled (``CommandTable.plain``)
    costs a look-up and a call.
    Reading stops while the pipeline says so (``pause_reading``): what is left
    is kept until ``resume_reading``. Once the connection is closing, nothing
    more it sends is looked at.

    The host provides ``broker``, ``table``, ``session``, ``budget``, ``replies``
    (its pipeline), ``peer``, ``MAX_LENGTH`` (--max-line, plus one for the CR
    stripped) and the ``_progress`` flag, and sets ``_reading_paused`` while reading is paused.
    """

    broker: Broker
    table: CommandTable
    session: Session | None
    budget: InputBudget
    replies: ReplyPipeline
    MAX_LENGTH: int
    _progress: bool
    if TYPE_CHECKING:

        @property
        def peer(self) -> tuple[str, int]: ...

    def _init_framing(self) -> None:
        self._plain = self.table.plain
        self._held = b""
        """What is left of the input: an incomplete line, or what came while reading was paused."""
        self._reading_paused = False
        self._literal: PendingLiteral | None = None
        self._after_literal = b""
        """The line ending that may still follow the last literal."""

    def _frame(self, data: bytes) -> None:
        """Handle the lines and literal bytes of ``data``, after what was held."""
        if self._held:
            data, self._held = self._held + data, b""
        start = 0
        while start < len(data):
            if self._reading_paused:
                self._held = data[start:]
                return
            if self.replies.closing:
                return
            if self._literal is not None or self._after_literal:
                data, start = self._literal_bytes(data[start:] if start else data), 0
            else:
                start = self._lines(data, start)

    def _lines(self, data: bytes, start: int) -> int:
        """Handle up to LINES_AT_ONCE lines of ``data`` from ``start``, until one starts a literal or reading stops;
        returns where that left off (``len(data)`` once every line is handled and an incomplete last one is held)."""
        replies, plain, broker, session = self.replies, self._plain, self.broker, self.session
        limit = self.MAX_LENGTH
        lines = (data[start:] if start else data).split(b"\n", LINES_AT_ONCE)
        rest = lines.pop()  # what follows the last LF split off: more lines, or an incomplete one
        for line in lines:
            length = len(line)
            start += length + 1
            if line.endswith(b"\r"):  # a CRLF line ending: the CR is not part of the line
                line = line[:-1]
            elif length >= limit:
                length += 1  # over --max-line however it ends (the limit leaves room for a CR)
            if length > limit:
                self._refuse(line_too_long(broker.config.max_line), None)
                return len(data)
            verb, _, args = line.partition(b" ")
            run = plain.get(verb)
            if run is not None and not line.endswith(b"}"):  # no tag, no literal (CommandTable.plain)
                self._progress = True
                replies.deliver(run(broker, session, args, None), None)
            else:
                self._line(line)
                if self._literal is not None or self._after_literal:
                    return start
            if self._reading_paused or replies.closing:
                return start
        if len(lines) == LINES_AT_ONCE:
            return start  # the rest may hold more lines
        if len(rest) > limit:
            self._refuse(line_too_long(broker.config.max_line), None)
        else:
            self._held = rest
        return len(data)

    def _line(self, line: bytes) -> None:
        """A line that may have a tag or a literal, or none of that and an unknown verb (or none)."""
        request = parse_request(line)
        if request is None:
            return
        plan = self.table.prepare(request)
        size = request.literal_size
        if size is None:
            self._progress = True
            self.replies.deliver(self.table.dispatch(self.broker, self.session, request, plan), request.tag)
            return
        limit = plan.literal_limit(self.broker.config)
        if size > limit:
            self._refuse(literal_too_big(size, limit), request.tag)
            return
        sink = plan.literal_sink(self.broker, self.session)
        self._literal = PendingLiteral(request, plan, sink, not plan.refused, self.budget)
        if self._literal.complete:
            self._literal_complete()

    def _literal_bytes(self, data: bytes) -> bytes:
        """Take the literal's bytes and the line ending after it from ``data``; returns what follows."""
        literal = self._literal
        if literal is not None:
            self._progress = True  # literal bytes arriving: the client is there
            data = literal.feed(data)
            if not literal.complete:
                return b""
            self._literal_complete()
        self._after_literal, data = after_literal(self._after_literal, data)
        return data

    def _literal_complete(self) -> None:
        literal, self._literal = self._literal, None
        assert literal is not None  # called once the literal being read is complete
        self._after_literal = CRLF
        request = literal.finish()
        if self.replies.closing:
            return
        if request is not None:
            self._progress = True
            self.replies.deliver(self.table.dispatch(self.broker, self.session, request, literal.plan), request.tag)
        else:
            self._log_refusal(OVER_BUDGET)
            self.replies.deliver(OVER_BUDGET, literal.request.tag)

    @property
    def _literal_parts(self) -> list[bytes]:
        """What is held in memory of the literal being read."""
        return self._literal.parts if self._literal is not None else []

    def _drop_input(self) -> None:
        """The connection is gone or broken: drop what is held, and release what the unfinished literal holds."""
        self._held = b""
        if self._literal is not None:
            self._literal.abort()
            self._literal = None

    def _refuse(self, error: Err, tag: bytes | None) -> None:
        """Send an error that leaves the stream unparseable, then close."""
        self._held = b""
        if self.replies.closing:  # the connection ends anyway; the error would never be sent
            return
        self._log_refusal(error)
        self.replies.closing_error(error, tag)

    def _log_refusal(self, error: Err) -> None:
        host, port = self.peer
        self.table.refusals.refused(f"tcp {host}:{port}", error.code, error.text)
