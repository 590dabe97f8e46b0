"""A real redis-server for a test: on a free port, in a temporary directory, keeping nothing on disk."""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase

from tests.helpers import temp_dir
from tests.redis_sync import NOT_INSTALLED, REDIS_SERVER, free_port


class RedisServer(ProcessProtocol):
    """One redis-server process; :meth:`start` fires once it accepts connections, :meth:`stop` once it has ended."""

    def __init__(self, directory: str, port: int) -> None:
        self.directory = directory
        self.port = port
        self.output = b""
        self._ready: Deferred[None] | None = None
        self._ended: Deferred[None] | None = None
        self._transport = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> Deferred[None]:
        self.output = b""
        self._ready, self._ended = Deferred(), Deferred()
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._transport = reactor.spawnProcess(
            self, REDIS_SERVER, [*args, "--dir", self.directory], env=os.environ, path=self.directory
        )
        return self._ready

    @property
    def running(self) -> bool:
        return self._ended is not None and not self._ended.called

    def stop(self) -> Deferred[None]:
        """Stop the server (SIGKILL: as if it crashed, and nothing is saved)."""
        ended = self._ended
        if ended is None or ended.called:
            return succeed(None)
        self._transport.signalProcess("KILL")
        waiting: Deferred[None] = Deferred()
        ended.addBoth(lambda _: waiting.callback(None))
        return waiting

    def outReceived(self, data: bytes) -> None:
        self.output += data
        if b"Ready to accept connections" in self.output and self._ready and not self._ready.called:
            self._ready.callback(None)

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        if self._ready is not None and not self._ready.called:
            self._ready.errback(RuntimeError(f"redis-server ended before it was ready:\n{self.output.decode()}"))
        assert self._ended is not None
        self._ended.callback(None)


async def start_redis(testcase: TestCase) -> RedisServer:
    """A redis-server for this test, stopped when it ends; the test is skipped if redis-server is not installed."""
    if not os.access(REDIS_SERVER, os.X_OK):
        raise SkipTest(NOT_INSTALLED)
    server = RedisServer(temp_dir(testcase), free_port())
    await server.start()
    testcase.addCleanup(server.stop)
    return server
