# -*- test-case-name: tests.test_redis_store -*-
"""The Redis stores' connection: the ``redis://`` URL, the start-up check, the connection, and Lua scripts.

Every key msgsvc writes starts with ``msgsvc:`` (see docs/operations.md for
the layout). A change that reads and then writes, or writes several keys, is
one Lua script: Redis runs a script alone, so msgsvc processes sharing the
Redis cannot slip between its steps. Scripts run by EVALSHA; each new
connection first loads them all (SCRIPT LOAD), and should Redis still answer
NOSCRIPT (someone ran SCRIPT FLUSH) the script is loaded and run again.
Scripts build their keys from the prefix, so the stores need one Redis (or a
primary), not a Redis Cluster.

The connection (a txredisapi pool of one, on the global reactor) is made on
first use, so that a start-up check that opens and closes the stores before
twistd daemonizes leaves no connection behind. A command while no connection
is up waits at most :data:`CONNECT_WAIT` seconds for one, then fails with
ConnectionError; a command sent fails when its connection is lost or after
:data:`REPLY_TIMEOUT` seconds without a reply. So a lost Redis makes
operations fail, never hang, and work again within about a second of Redis
being back.
"""

from __future__ import annotations

import hashlib
import re
import socket
from dataclasses import dataclass
from typing import Any

import txredisapi
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from msgsvc.store.interfaces import StoreError

START_TIMEOUT = 2.0
"""Seconds the start-up check waits for Redis to answer PING."""
CONNECT_WAIT = 2.0
"""Seconds a command waits for a connection while none is up."""
REPLY_TIMEOUT = 10.0
"""Seconds a command waits for Redis's reply before its connection is dropped and it fails."""
RETRY_DELAY = (0.2, 1.0)
"""The first and the longest delay between attempts to reconnect (txredisapi's default backs off to 10 s)."""

URL = re.compile(r"redis://(?P<host>\[[0-9A-Fa-f:.]+\]|[^/:\[\]]+)(?::(?P<port>\d{1,5}))?(?:/(?P<db>\d{1,4}))?/?\Z")
"""``redis://HOST[:PORT][/DB]`` (an IPv6 HOST in brackets)."""


@dataclass(frozen=True)
class Address:
    """Where the Redis is: host, port and database number."""

    host: str
    port: int
    db: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}/{self.db}"


def parse_url(url: str) -> Address:
    """The address a ``redis://HOST:PORT/DB`` URL names; StoreError if it is malformed."""
    found = URL.match(url)
    if found is None or not 0 < int(found["port"] or 6379) < 65536:
        raise StoreError(f"malformed Redis store URL {url!r}; use redis://HOST:PORT/DB")
    return Address(found["host"].strip("[]"), int(found["port"] or 6379), int(found["db"] or 0))


def check_reachable(address: Address, timeout: float = START_TIMEOUT) -> None:
    """Select the database and PING, blocking up to ``timeout`` seconds; StoreError with the reason if that fails.

    The one blocking call of the Redis stores: it runs at start-up, before the reactor does.
    """
    request = b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%d\r\n*1\r\n$4\r\nPING\r\n" % (len(str(address.db)), address.db)
    received = b""
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout) as connection:
            connection.sendall(request)
            while received.count(b"\r\n") < (1 if received.startswith(b"-") else 2):
                chunk = connection.recv(512)
                if not chunk:
                    break
                received += chunk
    except OSError as error:
        raise StoreError(f"cannot reach Redis at {address}: {error.strerror or error}") from None
    first, _, rest = received.partition(b"\r\n")
    if first != b"+OK" or not rest.startswith(b"+PONG"):
        answer = (first if first != b"+OK" else rest.split(b"\r\n")[0]).decode("ascii", "replace").lstrip("-+")
        raise StoreError(f"Redis at {address} refused msgsvc: {answer or 'no answer'}")


class Script:
    """A Lua script, known to Redis by its SHA1 once loaded."""

    every: list[Script] = []
    """Every script made, to load on each new connection."""

    def __init__(self, source: str) -> None:
        self.source = source.encode()
        self.sha = hashlib.sha1(self.source).hexdigest()
        Script.every.append(self)


def encode(text: str) -> bytes:
    """A name or text as Redis stores it: UTF-8 (surrogate escapes kept as the bytes they stand for)."""
    return text.encode("utf-8", "surrogateescape")


def decode(data: bytes) -> str:
    """The reverse of :func:`encode`."""
    return data.decode("utf-8", "surrogateescape")


def number(value: float) -> str:
    """A time as exact text for Redis (``repr`` keeps every digit of a float)."""
    return repr(float(value))


class Redis:
    """The stores' connection to Redis; commands answer Deferreds that fail rather than hang.

    One connection, so that Redis runs the commands in the order they were
    called (the store interfaces promise it): a pool would spread them over
    connections that Redis serves in any order. On each new connection every
    script is loaded (SCRIPT LOAD) before anything else is sent, so a Redis
    that restarted does not answer NOSCRIPT to the commands queued behind.
    """

    def __init__(self, address: Address, clock: IReactorTime) -> None:
        self.address = address
        self._clock = clock
        self._pool: Any = None
        self._waiting: list[tuple[Deferred[None], IDelayedCall]] = []
        """Commands waiting for a connection, in the order they were called."""
        self._peeking = False
        self._loaded_on: object = None
        """The connection the scripts were last loaded on."""

    def command(self, *args: Any) -> Deferred[Any]:
        """Run one Redis command; answers its reply (bulk strings as bytes, integers as int)."""
        return self._connected().addCallback(lambda _: self._pool.execute_command(*args))

    def run(self, script: Script, *args: Any) -> Deferred[Any]:
        """Run a Lua script with ``args`` as ARGV (no KEYS: scripts build their keys from the prefix)."""
        return self._connected().addCallback(lambda _: self._evalsha(script, args))

    def _evalsha(self, script: Script, args: tuple[Any, ...]) -> Deferred[Any]:
        answer = self._pool.evalsha(script.sha, [], args)
        return answer.addErrback(self._load_and_retry, script, args)

    def _load_and_retry(self, failure: Failure, script: Script, args: tuple[Any, ...]) -> Deferred[Any] | Failure:
        """NOSCRIPT (someone ran SCRIPT FLUSH): load the script and run it again."""
        if not failure.check(txredisapi.ScriptDoesNotExist):
            return failure
        loaded = self._pool.execute_command("SCRIPT", "LOAD", script.source)
        return loaded.addCallback(lambda _: self._pool.evalsha(script.sha, [], args))

    def _connected(self) -> Deferred[None]:
        """Fires once the connection is up: at once if it is, else within CONNECT_WAIT or failing."""
        if self._pool is None:
            self._pool = txredisapi.lazyConnectionPool(
                self.address.host,
                self.address.port,
                dbid=self.address.db,
                poolsize=1,
                charset=None,
                convertNumbers=False,
                connectTimeout=CONNECT_WAIT,
                replyTimeout=REPLY_TIMEOUT,
            )
            self._pool._factory.initialDelay, self._pool._factory.maxDelay = RETRY_DELAY
        if self._pool._factory.size and not self._waiting:
            self._load_scripts()
            return succeed(None)
        waiting: Deferred[None] = Deferred()
        self._waiting.append((waiting, self._clock.callLater(CONNECT_WAIT, self._give_up, waiting)))
        self._wait_for_connection()
        return waiting

    def _wait_for_connection(self) -> None:
        factory = self._pool._factory
        if factory.size:
            self._clock.callLater(0, self._resume)
            return
        if self._peeking:
            return
        queue = factory.connectionQueue
        for dead in [connection for connection in queue.pending if not connection.connected]:
            queue.remove(dead)  # else the queue would offer a dead connection as if one were up
        self._peeking = True
        queue.peek().addCallback(self._came_up)

    def _came_up(self, _: object) -> None:
        self._peeking = False
        self._clock.callLater(0, self._resume)  # once txredisapi has put the new connection in its pool

    def _resume(self) -> None:
        """Send the waiting commands, in order, if the connection is (still) up."""
        if self._pool is None or not self._waiting:
            return
        if not self._pool._factory.size:
            self._wait_for_connection()
            return
        self._load_scripts()
        waiting, self._waiting = self._waiting, []
        for deferred, timer in waiting:
            timer.cancel()
            deferred.callback(None)

    def _load_scripts(self) -> None:
        """On a connection not seen before, load every script first (Redis forgets them when it restarts)."""
        connection = self._pool._factory.pool[0]
        if connection is self._loaded_on:
            return
        self._loaded_on = connection
        for script in Script.every:
            self._pool.execute_command("SCRIPT", "LOAD", script.source).addErrback(lambda _: None)

    def _give_up(self, waiting: Deferred[None]) -> None:
        self._waiting = [(deferred, timer) for deferred, timer in self._waiting if deferred is not waiting]
        waiting.errback(txredisapi.ConnectionError(f"Redis at {self.address} is unreachable"))

    def close(self) -> Deferred[None] | None:
        """Close the connection once the commands sent have been answered; a Deferred firing then (None if unmade).

        Redis answers in order, so the answer to a last PING comes after every
        other. Commands still waiting for a connection fail.
        """
        if self._pool is None:
            return None
        connected = self._pool._factory.size and not self._waiting
        answered = self.command("PING") if connected else succeed(None)
        return answered.addBoth(self._disconnect)

    def _disconnect(self, _: object) -> Deferred[None] | None:
        pool, self._pool = self._pool, None
        waiting, self._waiting = self._waiting, []
        for deferred, timer in waiting:
            timer.cancel()
            deferred.errback(txredisapi.ConnectionError("the Redis stores are closed"))
        return pool.disconnect() if pool is not None else None
