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

The connection (txredisapi's protocol with a cheaper path per command, see
``redis_protocol``; kept up by Twisted's ClientService) is made on
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
import random
import re
import socket
from dataclasses import dataclass
from typing import Any

import txredisapi
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from msgsvc.store.interfaces import StoreError
from msgsvc.store.redis_protocol import Convert, RedisProtocol, bulk, pack

START_TIMEOUT = 2.0
"""Seconds the start-up check waits for Redis to answer PING."""
CONNECT_WAIT = 2.0
"""Seconds a command waits for a connection while none is up."""
REPLY_TIMEOUT = 10.0
"""Seconds a command waits for Redis's reply before its connection is dropped and it fails."""
RETRY_DELAY = (0.2, 1.0)
"""The first and the longest delay between attempts to reconnect."""
RETRY_JITTER = 0.1
"""Seconds of random delay added to each (Twisted adds up to a whole second by default, which would make the
longest wait for Redis to be noticed back as long as CONNECT_WAIT, and a command sent then would fail)."""
RETRY_POLICY = backoffPolicy(*RETRY_DELAY, jitter=lambda: random.random() * RETRY_JITTER)
"""Seconds before reconnecting after a number of failed attempts."""

log = Logger()

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
        self.head = b"$7\r\nEVALSHA\r\n$40\r\n%b\r\n$1\r\n0\r\n" % self.sha.encode()
        """``EVALSHA <sha> 0`` as RESP bulk strings: a call is the array header, this, and its ARGV."""
        self.load = pack(("SCRIPT", "LOAD", self.source))
        """The command that loads it."""
        Script.every.append(self)

    def call(self, args: tuple[Any, ...]) -> bytes:
        """The whole EVALSHA command that runs this script with ``args`` as ARGV."""
        return b"*%d\r\n%b%b" % (len(args) + 3, self.head, bulk(args))


def encode(text: str) -> bytes:
    """A name or text as Redis stores it: UTF-8 (surrogate escapes kept as the bytes they stand for)."""
    return text.encode("utf-8", "surrogateescape")


def decode(data: bytes) -> str:
    """The reverse of :func:`encode`."""
    return data.decode("utf-8", "surrogateescape")


def number(value: float) -> str:
    """A time as exact text for Redis (``repr`` keeps every digit of a float)."""
    return repr(float(value))


class _ProtocolFactory(Factory):
    """Builds the protocol for one database; what txredisapi's protocol asks of its factory on a failed SELECT."""

    isLazy = True
    """txredisapi logs, rather than raises, a connection error of a lazy factory."""

    def __init__(self, db: int, clock: IReactorTime) -> None:
        self.db = db
        self.clock = clock

    def buildProtocol(self, addr: object) -> RedisProtocol:
        """txredisapi's hiredis protocol with msgsvc's cheaper command path (see ``redis_protocol``)."""
        protocol = RedisProtocol(self.db, self.clock, REPLY_TIMEOUT)
        protocol.factory = self
        return protocol

    def stopTrying(self) -> None:
        """A SELECT refused: the connection is dropped and tried again (the start-up check caught the usual causes)."""

    def connectionError(self, message: str) -> None:
        log.error("{message}", message=message, category="ERROR")


class Redis:
    """The stores' connection to Redis; commands answer Deferreds that fail rather than hang.

    One connection, kept up by Twisted's ClientService (reconnecting with a
    backoff of :data:`RETRY_DELAY`), so that Redis runs the commands in the
    order they were called (the store interfaces promise it). On each new
    connection every script is loaded (SCRIPT LOAD) before anything else is
    sent, so a Redis that restarted does not answer NOSCRIPT to the commands
    queued behind.
    """

    def __init__(self, address: Address, reactor: IReactorTime) -> None:
        self.address = address
        self._clock = reactor
        endpoint = HostnameEndpoint(reactor, address.host, address.port, timeout=CONNECT_WAIT)
        self._service = ClientService(
            endpoint, _ProtocolFactory(address.db, reactor), retryPolicy=RETRY_POLICY, clock=reactor
        )
        self._started = False
        self._loaded_on: RedisProtocol | None = None
        """The connection the scripts were last loaded on: while it is up, commands go straight to it."""

    def command(self, *args: Any, convert: Convert | None = None) -> Deferred[Any]:
        """Run one Redis command; answers its reply (bulk strings as bytes, integers as int), or ``convert(reply)``."""
        request = pack(args)
        live = self._loaded_on
        if live is not None and live.connected:  # the usual case: straight onto the connection
            return live.send(request, convert)
        return self._connected().addCallback(lambda protocol: protocol.send(request, convert))

    def run(self, script: Script, *args: Any, convert: Convert | None = None) -> Deferred[Any]:
        """Run a Lua script with ``args`` as ARGV (no KEYS: scripts build their keys from the prefix).

        Should Redis answer NOSCRIPT (someone ran SCRIPT FLUSH), the script is loaded and run again.
        """
        request = script.call(args)
        live = self._loaded_on
        if live is not None and live.connected:
            return live.send(request, convert, script.load)
        return self._connected().addCallback(lambda protocol: protocol.send(request, convert, script.load))

    def _connected(self) -> Deferred[RedisProtocol]:
        """The connection, ready (its database selected), within CONNECT_WAIT seconds or failing.

        Callbacks run in the order the commands were called, so commands reach Redis in that order.
        """
        if not self._started:
            self._started = True
            self._service.startService()
        connected: Deferred[Any] = self._service.whenConnected()
        ready = connected.addCallback(lambda protocol: protocol.whenConnected())  # its database selected
        ready.addTimeout(CONNECT_WAIT, self._clock, self._unreachable)
        return ready.addCallback(self._load_scripts)

    def _unreachable(self, result: object, timeout: float) -> object:
        if isinstance(result, Failure) and result.check(CancelledError):
            raise txredisapi.ConnectionError(f"Redis at {self.address} is unreachable")
        return result

    def _load_scripts(self, protocol: RedisProtocol) -> RedisProtocol:
        """On a connection not seen before, load every script first (Redis forgets them when it restarts)."""
        if protocol is not self._loaded_on:
            self._loaded_on = protocol
            for script in Script.every:
                protocol.send(script.load).addErrback(lambda _: None)
        return protocol

    def close(self) -> Deferred[None] | None:
        """Close the connection once the commands sent have been answered; a Deferred firing then (None if unmade).

        Redis answers in order, so the answer to a last PING comes after every
        other. Commands still waiting for a connection fail.
        """
        if not self._started:
            return None
        self._started = False
        last = self.command("PING") if self._loaded_on is not None else succeed(None)
        return last.addBoth(lambda _: self._service.stopService())
