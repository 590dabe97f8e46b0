"""Bare Twisted reference servers for the queue rows: what Twisted alone costs per SEND+RECV unit.

``python -m benchmarks.bare --kind line|batched [--port N]`` listens on 127.0.0.1 and prints
``Server started on 127.0.0.1:<port>`` (as msgsvc does). Each speaks just enough of msgsvc's
queue unit as the load generator sends it: a greeting line, ``SEND <text>`` or ``SEND {N}``
followed by an N-byte literal (and an optional CRLF or LF) answered ``OK <id> queued <n> bytes``,
and ``RECV`` answered ``DATA <n> <id>`` + the message + CRLF, or ``ERR empty ...``. Messages
live in one in-memory deque; anything else gets ``ERR unknown-command``.

- ``line``: a :class:`~twisted.protocols.basic.LineReceiver`, one ``transport.write`` per reply.
- ``batched``: a plain :class:`~twisted.internet.protocol.Protocol` that parses everything one
  ``dataReceived`` brought and answers with one ``transport.write``.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys

from twisted.internet import protocol
from twisted.protocols.basic import LineReceiver

GREETING = b"OK bare-twisted ready\r\n"
EMPTY = b"ERR empty Error - no messages in queue.\r\n"
UNKNOWN = b"ERR unknown-command only SEND and RECV\r\n"
_LITERAL = re.compile(rb"\{([0-9]{1,9})\}\Z")


class Queue:
    """The one queue every connection shares: a deque of (id, message)."""

    def __init__(self) -> None:
        self.messages: collections.deque[tuple[int, bytes]] = collections.deque()
        self.next_id = 1

    def send(self, text: bytes) -> bytes:
        """Queue ``text``; returns the reply."""
        ident = self.next_id
        self.next_id += 1
        self.messages.append((ident, text))
        return b"OK %d queued %d bytes\r\n" % (ident, len(text))

    def recv(self) -> bytes:
        """Take the oldest message; returns the reply."""
        if not self.messages:
            return EMPTY
        ident, text = self.messages.popleft()
        return b"DATA %d %d\r\n%s\r\n" % (len(text), ident, text)


def command(queue: Queue, line: bytes) -> bytes | int:
    """The reply to one command line, or the length of the literal a ``SEND {N}`` announces."""
    if line.endswith(b"\r"):
        line = line[:-1]
    verb, _, rest = line.partition(b" ")
    verb = verb.upper()
    if verb == b"SEND":
        literal = _LITERAL.match(rest)
        return int(literal.group(1)) if literal else queue.send(rest)
    if verb == b"RECV":
        return queue.recv()
    return UNKNOWN


class LineServer(LineReceiver):
    """One ``transport.write`` per reply."""

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._literal = 0
        self._text = b""
        self._skip_newline = False

    def connectionMade(self) -> None:
        self.transport.setTcpNoDelay(True)  # as msgsvc does: small replies, awaited
        self.transport.write(GREETING)

    def lineReceived(self, line: bytes) -> None:
        if self._skip_newline:
            self._skip_newline = False
            if line in (b"", b"\r"):
                return  # the CRLF that ends a literal
        if not line or line == b"\r":
            return
        reply = command(self.queue, line)
        if isinstance(reply, int):
            self._literal = reply
            self._text = b""
            self.setRawMode()
        else:
            self.transport.write(reply)

    def rawDataReceived(self, data: bytes) -> None:
        self._text += data
        if len(self._text) < self._literal:
            return
        text, rest = self._text[: self._literal], self._text[self._literal :]
        self._text = b""
        self.transport.write(self.queue.send(text))
        self._skip_newline = True
        self.setLineMode(rest)


class BatchedServer(protocol.Protocol):
    """Parses everything one ``dataReceived`` brought; one ``transport.write`` for all its replies."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._buffer = b""
        self._literal = -1  # bytes of a SEND literal still awaited (-1: none)
        self._skip_newline = False

    def connectionMade(self) -> None:
        self.transport.setTcpNoDelay(True)  # as msgsvc does: small replies, awaited
        self.transport.write(GREETING)

    def dataReceived(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        replies = []
        pos = 0
        end = len(buffer)
        queue = self.queue
        while pos < end:
            if self._literal >= 0:
                if end - pos < self._literal:
                    break
                replies.append(queue.send(buffer[pos : pos + self._literal]))
                pos += self._literal
                self._literal = -1
                self._skip_newline = True
                continue
            if self._skip_newline:
                if buffer.startswith(b"\r\n", pos):
                    pos += 2
                elif buffer.startswith(b"\n", pos):
                    pos += 1
                elif end - pos < 2 and buffer[pos:end] == b"\r":
                    break  # the LF of the CRLF has not arrived yet
                self._skip_newline = False
                continue
            newline = buffer.find(b"\n", pos)
            if newline < 0:
                break
            line = buffer[pos:newline]
            pos = newline + 1
            if not line or line == b"\r":
                continue
            reply = command(queue, line)
            if isinstance(reply, int):
                self._literal = reply
            else:
                replies.append(reply)
        self._buffer = buffer[pos:]
        if replies:
            self.transport.write(b"".join(replies))


class Factory(protocol.Factory):
    """Builds the chosen protocol around one shared queue."""

    def __init__(self, kind: str) -> None:
        self.queue = Queue()
        self.kind = LineServer if kind == "line" else BatchedServer

    def buildProtocol(self, addr: object) -> protocol.Protocol:
        return self.kind(self.queue)


def main(argv: list[str] | None = None) -> None:
    """Listen, say where, and run until killed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare", description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("line", "batched"), required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    from twisted.internet import reactor  # Twisted's default on Linux: epoll, as msgsvc's twistd runs

    port = reactor.listenTCP(args.port, Factory(args.kind), interface="127.0.0.1", backlog=1024)
    where = port.getHost().port
    print(f"bare-twisted-{args.kind}: Server started on 127.0.0.1:{where} ({type(reactor).__name__})", flush=True)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
