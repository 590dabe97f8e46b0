# -*- test-case-name: tests.test_eager,tests.test_eager_closing,tests.test_eager_reactors -*-
"""TCP connections that send a reactor turn's writes once the turn's events are handled, without ``epoll_ctl``.

Twisted's ``FileDescriptor.write`` buffers: it registers the socket for write
events (``startWriting``, an ``epoll_ctl``), and on the next reactor turn
``doWrite`` sends and unregisters it (``stopWriting``, another ``epoll_ctl``):
two system calls and another pass through ``epoll_wait`` per reply (Twisted
issue #5303). :class:`EagerServer` gathers what is written to it while nothing
is buffered and sends it with one ``send`` as soon as the reactor has handled
the turn's events (:mod:`msgsvc.turns`: one ``callLater(0)`` shared by all
connections and the SQLite commit, which runs before the reactor polls again);
whatever the kernel does not take (a partial send, ``EAGAIN``, an error) goes
to the stock ``write``, so buffering, pausing a push producer past
``bufferSize``, ``doWrite`` and closing carry on as Twisted does them. Like
Twisted, it joins all of a turn's writes to a connection (the replies to its
commands, the events of other clients' commands) into one ``send``: sending
each write at once, as asyncio does, costs a ``send`` per chat event, several
times dearer in a fan-out than the ``epoll_ctl`` pair saved. Bytes stay in
order: gathered bytes go out only when nothing waits in the buffer, and once
some are gathered every write joins them.

It knows whether anything is buffered without Twisted's private attributes:
Twisted registers for write events (``startWriting``) whenever it buffers
bytes or starts closing, and unregisters (``stopWriting``) only once the
buffer is empty, so the overridden ``startWriting`` and ``stopWriting`` keep a
flag. (A producer paused past ``bufferSize`` implies buffered bytes.) The
stock path stays in charge while the connection closes (``loseConnection``,
``loseWriteConnection``, ``abortConnection``), with a pull producer (which
``doWrite`` must ask for more), and after ``startTLS`` on the transport
itself. TLS from an endpoint wrapper (``wrapServerTLS``, as ``ssl:``
listeners are) writes its records to this transport like any protocol.

:class:`EagerPort` accepts connections as ``EagerServer``, and
:class:`EagerTCPEndpoint` listens with it; it needs a reactor built on
Twisted's ``PosixReactorBase`` (epoll, poll, select), which
:func:`msgsvc.transports.endpoints.tcp_endpoint` checks, falling back to the
stock ``tcp:`` endpoint on any other (a test's ``MemoryReactor``). Measured
with the queue and chat benchmarks, see ``docs/architecture.md``.
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.internet import tcp
from twisted.internet.defer import Deferred, execute
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IStreamServerEndpoint
from twisted.internet.posixbase import PosixReactorBase
from zope.interface import implementer

from msgsvc.turns import TurnEnd, turn_end


class EagerServer(tcp.Server):
    """A server-side TCP connection that sends what is written to it once the reactor turn's events are handled.

    Overrides ``write`` and ``writeSequence`` (gather), ``startWriting`` and ``stopWriting`` (whether bytes
    are buffered; gathered bytes are sent before Twisted registers for writing), ``startTLS`` (gathered bytes
    go out first, in the clear), and ``loseWriteConnection`` and ``abortConnection`` (the stock path from then
    on).
    """

    _eager_buffering = False
    """Registered for write events: bytes are buffered or the connection is closing."""
    _eager_stopped = False
    """Half-closed or aborted: writes take the stock path, which drops them."""
    _eager_parts: list[bytes] | None = None
    """What was written this turn, not yet sent; None when nothing is."""
    _eager_size = 0
    _eager_turn: TurnEnd | None = None
    """The reactor's TurnEnd, looked up at the first write."""

    def write(self, data: bytes) -> None:
        """Gather ``data`` (after bytes gathered already, or when nothing is buffered); otherwise Twisted's write."""
        if type(data) is bytes and data and (self._eager_parts is not None or self._eager_ready()):
            if self._eager_parts is None:
                self._eager_parts, self._eager_size = [], 0
                turn = self._eager_turn
                if turn is None:
                    turn = self._eager_turn = turn_end(self.reactor)
                turn.later(self.eager_flush)
            self._eager_parts.append(data)
            self._eager_size += len(data)
            if self._eager_size > self.bufferSize:  # a large write: send now, so the producer is paused in time
                self.eager_flush()
            return
        super().write(data)

    def writeSequence(self, iovec: Iterable[bytes]) -> None:
        """Twisted's, except while bytes are gathered: the parts are checked (TypeError) and gathered as one write."""
        if self._eager_parts is None:
            super().writeSequence(iovec)
            return
        parts = list(iovec)
        if not all(isinstance(part, bytes) for part in parts):
            raise TypeError("Data must be bytes")
        self.write(b"".join(parts))

    def _eager_ready(self) -> bool:
        """Whether bytes may be sent now: nothing buffered, the connection open and no pull producer."""
        return not (
            self._eager_buffering
            or self._eager_stopped
            or not self.connected
            or self.disconnecting
            or self.TLS
            or (self.producer is not None and not self.streamingProducer)
        )

    def eager_flush(self) -> None:
        """Send the gathered bytes if they may go now; what the kernel does not take is Twisted's to buffer."""
        if self._eager_parts is None:  # none, or sent already
            return
        data = b"".join(self._eager_parts)
        self._eager_parts = None
        if self._eager_ready():
            sent = self.writeSomeData(data)
            if sent == len(data):
                return
            # EAGAIN (0) or a partial send: Twisted buffers the rest. An error (an exception returned):
            # Twisted buffers it all, and its doWrite meets the error again and loses the connection as usual.
            if isinstance(sent, int):
                data = data[sent:]
        super().write(data)

    def startWriting(self) -> None:
        """Gathered bytes go first (Twisted may be about to close, and its doWrite could come before the turn's
        end: a write from a timed call is followed by a poll before the next timed calls run)."""
        self.eager_flush()
        self._eager_buffering = True
        super().startWriting()

    def stopWriting(self) -> None:
        self._eager_buffering = False
        super().stopWriting()

    def startTLS(self, ctx: object, normal: bool = True) -> None:
        self.eager_flush()
        super().startTLS(ctx, normal)

    def loseWriteConnection(self) -> None:
        self._eager_stopped = True
        super().loseWriteConnection()

    def abortConnection(self) -> None:
        self._eager_parts = None
        self._eager_stopped = True
        super().abortConnection()


class EagerPort(tcp.Port):
    """A listening TCP port whose connections are :class:`EagerServer`."""

    transport = EagerServer


@implementer(IStreamServerEndpoint)
class EagerTCPEndpoint:
    """A TCP server endpoint (as Twisted's ``tcp:``) that listens with an :class:`EagerPort`."""

    def __init__(self, reactor: PosixReactorBase, port: int, interface: str, backlog: int) -> None:
        self.reactor = reactor
        self.port = port
        self.interface = interface
        self.backlog = backlog

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        return execute(self._listen, protocolFactory)

    def _listen(self, factory: IProtocolFactory) -> IListeningPort:
        port = EagerPort(self.port, factory, self.backlog, self.interface, self.reactor)
        port.startListening()
        return port
