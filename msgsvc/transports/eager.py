# -*- test-case-name: tests.test_eager,tests.test_eager_reactors -*-
"""TCP connections that send a write at once when nothing is buffered, as asyncio does.

Twisted's ``FileDescriptor.write`` always buffers: it registers the socket for
write events (``startWriting``, an ``epoll_ctl``), and on the next reactor
turn ``doWrite`` sends and unregisters it (``stopWriting``, another
``epoll_ctl``): two system calls and a reactor pass per reply (Twisted issue
#5303). :class:`EagerServer` tries ``send`` at once instead, when nothing is
buffered, and hands whatever the kernel does not take (a partial send,
``EAGAIN``, an error) to the stock ``write``, so buffering, pausing a push
producer past ``bufferSize``, ``doWrite`` and closing carry on exactly as
Twisted does them. Replies stay in order, since a write goes out at once only
when no earlier byte waits in the buffer.

It knows whether anything is buffered without Twisted's private attributes:
Twisted registers for write events (``startWriting``) whenever it buffers
bytes or starts closing, and unregisters (``stopWriting``) only once the buffer
is empty, so the overridden ``startWriting`` and ``stopWriting`` keep a flag.
(A producer paused past ``bufferSize`` implies buffered bytes, so it needs no
test of its own.) The stock path stays in charge while the connection closes
(``loseConnection``, ``loseWriteConnection``, ``abortConnection``), with a
pull producer (which ``doWrite`` must ask for more), and after ``startTLS``
on the transport itself (TLS then writes through Twisted's own bypass). TLS
from an endpoint wrapper (``wrapServerTLS``, as ``ssl:`` listeners are)
writes its records to this transport like any protocol, and they go out at once.

:class:`EagerPort` accepts connections as ``EagerServer``, and
:class:`EagerTCPEndpoint` listens with it; it needs a reactor built on
Twisted's ``PosixReactorBase`` (epoll, poll, select), which
:func:`msgsvc.transports.endpoints.tcp_endpoint` checks, falling back to the
stock ``tcp:`` endpoint on any other (a test's ``MemoryReactor``). Measured with the queue
benchmark, see ``docs/architecture.md``.
"""

from __future__ import annotations

from twisted.internet import tcp
from twisted.internet.defer import Deferred, execute
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IStreamServerEndpoint
from twisted.internet.posixbase import PosixReactorBase
from zope.interface import implementer


class EagerServer(tcp.Server):
    """A server-side TCP connection whose writes are sent at once when nothing is buffered.

    Overrides ``write`` (the eager send), ``startWriting`` and ``stopWriting``
    (whether bytes are buffered), and ``loseWriteConnection`` and
    ``abortConnection`` (from then on every write takes the stock path).
    """

    _eager_buffering = False
    """Registered for write events: bytes are buffered or the connection is closing."""
    _eager_stopped = False
    """Half-closed or aborted: writes take the stock path, which drops them."""

    def write(self, data: bytes) -> None:
        """Send ``data`` now if nothing waits before it; the rest, if any, is buffered by Twisted's ``write``."""
        if (
            self._eager_buffering
            or self._eager_stopped
            or not self.connected
            or self.disconnecting
            or self.TLS
            or (self.producer is not None and not self.streamingProducer)
            or type(data) is not bytes
            or not data
        ):
            super().write(data)
            return
        sent = self.writeSomeData(data)
        if sent == len(data):
            return
        # EAGAIN (0) or a partial send: Twisted buffers the rest. An error (an exception returned):
        # Twisted buffers it all, and its doWrite meets the error again and loses the connection as usual.
        super().write(data[sent:] if isinstance(sent, int) else data)

    def startWriting(self) -> None:
        self._eager_buffering = True
        super().startWriting()

    def stopWriting(self) -> None:
        self._eager_buffering = False
        super().stopWriting()

    def loseWriteConnection(self) -> None:
        self._eager_stopped = True
        super().loseWriteConnection()

    def abortConnection(self) -> None:
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
