# -*- test-case-name: tests.test_tcp,tests.test_tcp_literals,tests.test_input_budget -*-
"""Reading a ``{N}`` literal off a TCP stream, piece by piece as its bytes arrive.

A literal goes one of three ways: to a sink (a forum upload streams to disk),
into memory (charged to the server-wide :class:`~msgsvc.transports.input_budget.InputBudget`
as its bytes arrive), or nowhere (a request refused anyway, or one whose
literal the budget could not hold: its bytes are read and dropped, so the
stream stays in step).

:class:`LiteralReading` is the part of :class:`msgsvc.transports.tcp.Connection` (a
``LineReceiver``) that switches to raw mode for a literal and back after it.
"""

from __future__ import annotations

from twisted.protocols.basic import LineReceiver

from msgsvc.dispatch.commands import LiteralSink
from msgsvc.dispatch.pipeline import ReplyPipeline
from msgsvc.dispatch.table import CommandTable, Plan
from msgsvc.domain.broker import Broker
from msgsvc.domain.session import Session
from msgsvc.protocol.wire import CRLF, Request
from msgsvc.transports.input_budget import InputBudget


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


class LiteralReading(LineReceiver):
    """The part of a LineReceiver that reads the literal announced by a command line, then runs the command.

    The host provides ``broker``, ``table``, ``session``, ``budget``,
    ``replies`` (its pipeline), the ``_progress`` flag and ``_over_budget(tag)``
    (the reply to a literal the budget could not hold).
    """

    broker: Broker
    table: CommandTable
    session: Session | None
    budget: InputBudget
    replies: ReplyPipeline
    _progress: bool

    def _init_literals(self) -> None:
        self._literal: PendingLiteral | None = None
        self._after_literal = b""
        """The line ending that may still follow the last literal."""

    @property
    def _literal_parts(self) -> list[bytes]:
        """What is held in memory of the literal being read."""
        return self._literal.parts if self._literal is not None else []

    def _read_literal(self, request: Request, plan: Plan) -> None:
        """Read the literal ``request`` announces (its size already checked against ``plan``), then run it."""
        self.setRawMode()
        sink = plan.literal_sink(self.broker, self.session)
        self._literal = PendingLiteral(request, plan, sink, not plan.refused, self.budget)
        if self._literal.complete:
            self._literal_complete()

    def rawDataReceived(self, data: bytes) -> None:
        literal = self._literal
        if literal is not None:
            self._progress = True  # literal bytes arriving: the client is there
            data = literal.feed(data)
            if not literal.complete:
                return
            self._literal_complete()
        self._after_literal, data = after_literal(self._after_literal, data)
        if not self._after_literal:
            self.setLineMode(data)

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
            self._over_budget(literal.request.tag)

    def _drop_literal(self) -> None:
        """The connection is gone or broken: release what the unfinished literal holds."""
        if self._literal is not None:
            self._literal.abort()
            self._literal = None

    def _over_budget(self, tag: bytes | None) -> None:
        raise NotImplementedError
