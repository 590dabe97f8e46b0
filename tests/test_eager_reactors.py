"""The eager TCP transport on real loopback sockets under the epoll and poll reactors, each in a subprocess.

The subprocess is this module run as ``python -m tests.test_eager_reactors REACTOR SCENARIO``: it installs
the reactor, listens through :func:`msgsvc.transports.endpoints.tcp_endpoint` on port 0, connects a client
on the same reactor, plays the scenario and writes what it saw as one JSON line.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Any

from twisted.trial.unittest import TestCase

BIG = 4 << 20
"""Bytes of one large write: more than loopback's socket buffers hold, so it is sent in part."""
SMALL = [b"OK %d\r\n" % index for index in range(5)]
DEADLINE = 30.0
"""Seconds the subprocess may take before it gives up (it stops long before, normally)."""


def _install(name: str) -> Any:
    """Install the reactor called ``name`` (epoll, poll) and return it."""
    if name == "epoll":
        from twisted.internet import epollreactor

        epollreactor.install()
    else:
        from twisted.internet import pollreactor

        pollreactor.install()
    from twisted.internet import reactor

    return reactor


def _reply_scenario(reactor: Any, report: dict[str, Any]) -> Any:
    """Ping-pong: each request is answered by one write; was the transport registered for writing after the read?"""
    from twisted.internet.protocol import Factory, Protocol

    rounds = 50

    class Reply(Protocol):
        def dataReceived(self, data: bytes) -> None:
            self.transport.write(b"OK " + data)
            report["transport"] = type(self.transport).__name__
            reactor.callLater(0, self.check)  # once this read is over: was the reply sent, or left buffered?

        def check(self) -> None:
            report["registered"] += self.transport in reactor.getWriters()

    class Ask(Protocol):
        def connectionMade(self) -> None:
            self.transport.write(b"0\r\n")

        def dataReceived(self, data: bytes) -> None:
            report["answers"] += 1
            if report["answers"] < rounds:
                self.transport.write(b"%d\r\n" % report["answers"])
            else:
                self.transport.loseConnection()

        def connectionLost(self, reason: object = None) -> None:
            reactor.stop()

    report.update(registered=0, answers=0)
    return Factory.forProtocol(Reply), Ask()


def _flow_scenario(reactor: Any, report: dict[str, Any]) -> Any:
    """A client that does not read at first: small and large writes mixed, a push producer paused past
    bufferSize and resumed once drained; then the client asks for more, and the server writes and closes.
    Did every byte arrive, in order?"""
    from twisted.internet.interfaces import IPushProducer
    from twisted.internet.protocol import Factory, Protocol
    from zope.interface import implementer

    first = [SMALL[0], os.urandom(BIG), SMALL[1], SMALL[2], os.urandom(BIG), SMALL[3]]
    after = [SMALL[4], os.urandom(BIG), SMALL[0]]
    report["expected"] = hashlib.sha256(b"".join(first + after)).hexdigest()
    report["expected_size"] = sum(map(len, first + after))
    client: list[Protocol] = []

    @implementer(IPushProducer)
    class Sender(Protocol):
        def dataReceived(self, data: bytes) -> None:
            if data.startswith(b"go"):
                self.transport.registerProducer(self, True)
                for part in first:
                    self.transport.write(part)
                report["paused_while_client_waits"] = report.get("paused", False)
                client[0].transport.resumeProducing()
            else:  # "more": the client read everything, the producer was resumed
                self.transport.unregisterProducer()
                self.transport.write(after[0])
                report["registered_after_drain"] = self.transport in reactor.getWriters()
                for part in after[1:]:
                    self.transport.write(part)
                self.transport.loseConnection()

        def pauseProducing(self) -> None:
            report["paused"] = True

        def resumeProducing(self) -> None:
            report["resumed"] = True

        def stopProducing(self) -> None:
            pass

    class Receive(Protocol):
        def connectionMade(self) -> None:
            client.append(self)
            self.digest, self.size = hashlib.sha256(), 0
            self.transport.pauseProducing()
            self.transport.write(b"go\r\n")

        def dataReceived(self, data: bytes) -> None:
            self.digest.update(data)
            self.size += len(data)
            if self.size == sum(map(len, first)):
                self.transport.write(b"more\r\n")

        def connectionLost(self, reason: object = None) -> None:
            report.update(received=self.digest.hexdigest(), received_size=self.size)
            reactor.stop()

    return Factory.forProtocol(Sender), Receive()


SCENARIOS = {"reply": _reply_scenario, "flow": _flow_scenario}


def main(reactor_name: str, scenario: str) -> None:
    """Run one scenario on one reactor and write the report as JSON."""
    reactor = _install(reactor_name)
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    from msgsvc.transports.endpoints import tcp_endpoint

    report: dict[str, Any] = {"reactor": type(reactor).__name__}
    server_factory, client = SCENARIOS[scenario](reactor, report)

    def connect(port: Any) -> Any:
        report["port"] = type(port).__name__
        return connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), client)

    def failed(failure: Any) -> None:
        report["error"] = failure if isinstance(failure, str) else failure.getTraceback()
        reactor.stop()

    tcp_endpoint(reactor, 0, "127.0.0.1").listen(server_factory).addCallback(connect).addErrback(failed)
    reactor.callLater(DEADLINE, failed, "timed out")
    reactor.run()
    sys.stdout.write(json.dumps(report) + "\n")


class ReactorScenarios:
    """Both scenarios on one reactor (set ``reactor``)."""

    reactor = ""
    reactor_class = ""
    timeout = 60

    async def play(self, scenario: str) -> dict[str, Any]:
        """Run ``scenario`` in a subprocess on this class's reactor; its report."""
        from tests.helpers import run_cli

        out, err, code = await run_cli("tests.test_eager_reactors", self.reactor, scenario)
        self.assertEqual(code, 0, err.decode())
        report: dict[str, Any] = json.loads(out.decode().splitlines()[-1])
        self.assertNotIn("error", report)
        self.assertEqual((report["reactor"], report["port"]), (self.reactor_class, "EagerPort"))
        return report

    async def test_reply_sent_at_once(self) -> None:
        """Every reply goes out at the end of its turn: the transport is never registered for writing."""
        report = await self.play("reply")
        self.assertEqual((report["transport"], report["answers"], report["registered"]), ("EagerServer", 50, 0))

    async def test_partial_sends_flow_control_and_close(self) -> None:
        """Large writes to a client not reading are buffered and pause the producer; once drained it resumes,
        and every byte of mixed eager and buffered writes arrives in order before the close."""
        report = await self.play("flow")
        self.assertTrue(report["paused_while_client_waits"])
        self.assertTrue(report["resumed"])
        self.assertFalse(report["registered_after_drain"])
        self.assertEqual((report["received_size"], report["received"]), (report["expected_size"], report["expected"]))


class EPollTests(ReactorScenarios, TestCase):
    """On the epoll reactor (twistd's default on Linux)."""

    reactor = "epoll"
    reactor_class = "EPollReactor"


class PollTests(ReactorScenarios, TestCase):
    """On the poll reactor."""

    reactor = "poll"
    reactor_class = "PollReactor"


if __name__ == "__main__":
    main(*sys.argv[1:])
