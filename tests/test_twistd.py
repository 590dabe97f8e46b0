"""One real run of ``twistd -n msgsvc`` in a subprocess."""

import os
import re
import signal
import sys

from twisted.internet import defer, reactor
from twisted.internet.protocol import ProcessProtocol
from twisted.trial.unittest import SkipTest, TestCase

from msgsvc.client import connect_tcp
from tests.helpers import CHECKOUT_ENV, ROOT, temp_dir

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


class _Twistd(ProcessProtocol):
    """Collects the server's output; ``started`` fires with the port it logged."""

    def __init__(self) -> None:
        self.output = b""
        self.started: defer.Deferred[int] = defer.Deferred()
        self.ended: defer.Deferred[tuple] = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.output += data
        found = re.search(rb"Server started on 127\.0\.0\.1:(\d+) \(TCP and UDP\)", self.output)
        if found and not self.started.called:
            self.started.callback(int(found.group(1)))

    errReceived = outReceived

    def processEnded(self, reason) -> None:
        if not self.started.called:
            self.started.errback(RuntimeError(f"twistd ended before starting:\n{self.output.decode()}"))
        self.ended.callback((reason.value.exitCode, reason.value.signal))


class TwistdTests(TestCase):
    """The plugin as an operator runs it."""

    timeout = 60

    @defer.inlineCallbacks
    def test_run_serve_and_stop(self) -> None:
        """twistd -n msgsvc logs its port, serves, and on SIGTERM says BYE and shuts down cleanly."""
        if not os.path.exists(TWISTD):
            raise SkipTest(f"no twistd script beside {sys.executable}")
        process = _Twistd()
        store = os.path.join(temp_dir(self), "msgsvc.sqlite")
        args = [TWISTD, "-n", "--pidfile=", "msgsvc", "--port", "0", "--store", f"sqlite:{store}"]
        transport = reactor.spawnProcess(process, TWISTD, args, env=CHECKOUT_ENV, path=ROOT)
        self.addCleanup(lambda: process.ended.called or transport.signalProcess("KILL"))
        port = yield process.started
        events = []
        client = yield connect_tcp(reactor, "127.0.0.1", port, events.append)
        reply = yield client.command("SEND", payload=b"hello")
        self.assertEqual(reply.text, "1 queued 5 bytes")
        transport.signalProcess("TERM")
        yield client.disconnected
        ended = yield process.ended
        self.assertEqual([(event.name, event.args) for event in events], [("BYE", "shutdown")])
        # twistd exits 0, or (newer Twisted) re-raises the SIGTERM it handled
        self.assertIn(ended, [(0, None), (None, signal.SIGTERM)], process.output.decode())
        self.assertIn(b"Server Shut Down.", process.output)
        self.assertIn(b"client 1 connected over tcp", process.output)
