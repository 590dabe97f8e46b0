"""The Redis stores answering at once, so that the Clock-based, store-independent test bodies run on Redis too.

The stores are msgsvc's own (every Lua script, key and conversion of
``msgsvc.store.redis_*``) on a real redis-server; only their connection is a
blocking socket here, in place of txredisapi's, so that each operation's
Deferred has fired when it returns, as the memory store's answers are ready.
The connection itself, its failures and several nodes are tested on the
reactor by tests/test_store_contract.py, tests/test_redis_store.py and
tests/test_cluster*.py.

One redis-server serves the whole test run (started on first use, killed at
exit); each broker starts on an emptied database.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
from typing import Any

import hiredis
import txredisapi
from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SkipTest

from msgsvc.store.redis_connection import Address, Script
from msgsvc.store.redis_protocol import Convert, pack
from msgsvc.store.redis_stores import stores_over
from msgsvc.store.registry import Stores

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
NOT_INSTALLED = "redis-server not installed: apt-get install redis-server"


def free_port() -> int:
    """A TCP port nothing listens on now (on 127.0.0.1)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


REDIS_AT_ONCE = "redis-at-once"
"""The store name (for tests.helpers.make_broker) of the Redis stores on a blocking connection."""


class BlockingRedis:
    """The stores' connection to Redis as a blocking socket: every command's Deferred has fired when it returns.

    Replies are converted as txredisapi's HiredisProtocol (``charset=None``)
    converts them: bulk strings as bytes, integers as int, errors as failures.
    """

    def __init__(self, port: int) -> None:
        self.address = Address("127.0.0.1", port, 0)
        self._socket = socket.create_connection(("127.0.0.1", port))
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = hiredis.Reader(protocolError=txredisapi.InvalidData, replyError=txredisapi.ResponseError)
        for script in Script.every:
            self._ask(script.load)

    def command(self, *args: Any, convert: Convert | None = None) -> Deferred[Any]:
        return self._answer(self._ask(pack(args)), convert)

    def run(self, script: Script, *args: Any, convert: Convert | None = None) -> Deferred[Any]:
        return self._answer(self._ask(script.call(args)), convert)

    def close(self) -> None:
        self._socket.close()

    @staticmethod
    def _answer(reply: Any, convert: Convert | None) -> Deferred[Any]:
        if isinstance(reply, Exception):
            return fail(reply)
        try:
            return succeed(reply if convert is None else convert(reply))
        except Exception:
            return fail()

    def _ask(self, request: bytes) -> Any:
        """Send one command (as RESP) and wait for its reply."""
        self._socket.sendall(request)
        reply = self._reader.gets()
        while reply is False:
            data = self._socket.recv(65536)
            if not data:
                raise ConnectionError("redis-server closed the connection")
            self._reader.feed(data)
            reply = self._reader.gets()
        return reply


class _SharedServer:
    """The one redis-server of this test run, in a temporary directory, keeping nothing on disk."""

    port: int | None = None
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def started(cls) -> int:
        if cls.port is None:
            if not os.access(REDIS_SERVER, os.X_OK):
                raise SkipTest(NOT_INSTALLED)
            cls.port = _start(free_port())
        return cls.port


def _start(port: int) -> int:
    directory = tempfile.mkdtemp(prefix="msgsvc-redis-")
    args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = subprocess.Popen([*args, "--dir", directory], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    atexit.register(shutil.rmtree, directory, True)
    atexit.register(server.kill)
    assert server.stdout is not None
    for line in server.stdout:  # blocks until the server says it is ready (or ends)
        if b"Ready to accept connections" in line:
            _SharedServer.process = server  # its output stays open (a closed pipe could fail its later logging)
            return port
    raise RuntimeError(f"redis-server on port {port} ended before it was ready")


def shared_redis() -> BlockingRedis:
    """A new connection to the test run's redis-server."""
    return BlockingRedis(_SharedServer.started())


def redis_at_once() -> Stores:
    """msgsvc's Redis stores over a blocking connection to an emptied database (a single node)."""
    redis = shared_redis()
    redis.command("FLUSHDB")
    return stores_over(redis, holder="test-node", link=None, close=redis.close)  # type: ignore[arg-type]
