# -*- test-case-name: tests.test_redis_protocol -*-
"""The Redis connection's protocol: txredisapi's, with a cheaper path for each command and reply.

txredisapi's :class:`~txredisapi.HiredisProtocol` still makes the connection
(SELECT on connect, ``whenConnected``); what this subclass replaces is its
path per command: the request built through several layers, three chained
Deferreds, a ``callLater`` per command for the reply timeout, and a
DeferredQueue whose ``list.pop(0)`` is O(commands in flight) per reply. Each
command's objects also live until its reply, so with thousands in flight
(deep pipelines) the garbage collector traversed them again and again: that,
more than the Python per command, is what made throughput fall as pipelines
deepened.

Here a command is one ``bytes`` (:func:`pack`, or a script's pre-encoded
EVALSHA head), written at once (the transport sends what a reactor turn
wrote in one ``send``), and one Deferred with one tuple in a deque, fired in
order by its reply as hiredis parses it. A caller's conversion of the reply
and the reload of a script Redis answered NOSCRIPT to happen here too, so
they cost no callbacks. One timer per connection keeps the reply timeout: it
fires at the oldest waiting command's deadline, so every command still fails
:attr:`replyTimeout` seconds after it was sent without a reply; then every
waiting command fails and the connection is dropped. A lost connection fails
every waiting command with ConnectionError.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import hiredis
import txredisapi
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure


def argument(value: object) -> bytes:
    """One command argument as Redis receives it: bytes as they are, text as UTF-8, numbers as text."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, float):
        return format(value, "f").encode()  # as txredisapi does
    return str(value).encode()


def bulk(values: Iterable[object]) -> bytes:
    """``values`` as RESP bulk strings, one after the other (no array header)."""
    out = []
    for value in values:
        data = value if type(value) is bytes else argument(value)
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


def pack(args: tuple[object, ...]) -> bytes:
    """A whole command (``args[0]`` its name) as RESP."""
    return b"*%d\r\n%b" % (len(args), bulk(args))


Convert = Callable[[Any], Any]
"""What a command's caller makes of its reply (run before its Deferred fires, saving a callback)."""


def _ignored(failure: Failure) -> None:
    return None


class RedisProtocol(txredisapi.HiredisProtocol):
    """txredisapi's hiredis protocol; commands go through :meth:`send`, a deque of waiting commands and one timer."""

    def __init__(self, dbid: int, clock: IReactorTime, reply_timeout: float) -> None:
        super().__init__(charset=None, dbid=dbid, replyTimeout=reply_timeout, convertNumbers=False)
        self.replies = hiredis.Reader(protocolError=txredisapi.InvalidData, replyError=txredisapi.ResponseError)
        """hiredis's parser: what Redis sent, as replies (an error reply as a ResponseError, not raised)."""
        self.clock = clock
        self.waiting: deque[tuple[Deferred[Any], float, Convert | None, bytes | None, bytes]] = deque()
        """Each command sent and not yet answered, the oldest first: its Deferred, when it was sent, its
        ``convert`` and ``load``, and the command itself."""
        self._timer: IDelayedCall | None = None

    def execute_command(self, *args: Any, **kwargs: Any) -> Deferred[Any]:
        """txredisapi's entry point (SELECT on connect, and every command helper): one packed command."""
        return self.send(pack(args))

    def send(self, request: bytes, convert: Convert | None = None, load: bytes | None = None) -> Deferred[Any]:
        """Write one whole command; a Deferred fired by its reply (a Redis error reply is a ResponseError).

        ``convert``, if given, is applied to a reply that is not an error; ``load``, if given, is sent when
        Redis answers NOSCRIPT (a SCRIPT LOAD), and then ``request`` once more.
        """
        if not self.connected:
            raise txredisapi.ConnectionError("Not connected")
        self.transport.write(request)
        answer: Deferred[Any] = Deferred()
        self.waiting.append((answer, self.clock.seconds(), convert, load, request))
        if self._timer is None:
            self._timer = self.clock.callLater(self.replyTimeout, self._check_timeout)
        return answer

    def dataReceived(self, data: bytes, unpause: bool = False) -> None:
        """Answer the waiting commands with every whole reply in ``data``, in order."""
        reader = self.replies
        reader.feed(data)
        popleft = self.waiting.popleft
        reply = reader.gets()
        while reply is not False:
            answer, _, convert, load, request = popleft()
            if answer.called:  # cancelled by its caller: the reply is dropped
                pass
            elif isinstance(reply, Exception):
                if load is not None and str(reply).startswith("NOSCRIPT"):
                    self.send(load).addErrback(_ignored)  # an error here, the retry answers too
                    self.transport.write(request)
                    self.waiting.append((answer, self.clock.seconds(), convert, None, request))
                else:
                    answer.errback(Failure(reply))
            elif convert is None:
                answer.callback(reply)
            else:
                try:
                    converted = convert(reply)
                except Exception:
                    answer.errback(Failure())
                else:
                    answer.callback(converted)
            reply = reader.gets()

    def _check_timeout(self) -> None:
        """At the oldest waiting command's deadline: fail everything and drop the connection, or wait on."""
        self._timer = None
        if not self.waiting:
            return
        left = self.waiting[0][1] + self.replyTimeout - self.clock.seconds()
        if left > 0:
            self._timer = self.clock.callLater(left, self._check_timeout)
            return
        self._fail_waiting(txredisapi.TimeoutError(f"Not received Redis response in {self.replyTimeout} seconds"))
        self.transport.abortConnection()

    def connectionLost(self, why: Failure) -> None:
        """txredisapi's bookkeeping, then every waiting command fails."""
        super().connectionLost(why)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._fail_waiting(txredisapi.ConnectionError("Lost connection"))

    def _fail_waiting(self, error: Exception) -> None:
        waiting = self.waiting
        while waiting:
            answer = waiting.popleft()[0]
            if not answer.called:
                answer.errback(Failure(error))
