"""End-to-end tests over real loopback sockets on a free port (port 0)."""

import os

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from msgsvc.client import ServerError, connect_tcp, connect_udp
from msgsvc.tap import Options, makeService
from tests.helpers import ROOT, run_cli


class RealServer(TestCase):
    """A msgsvc service listening on a free loopback port."""

    timeout = 30
    options = ["--port", "0", "--max-clients", "0", "--store", "memory"]

    def setUp(self):
        options = Options()
        options.parseOptions([*self.options, "--files", os.path.join(ROOT, "data")])
        self.service = makeService(options, reactor)
        self.service.startService()
        self.port = self.service.getServiceNamed("listeners").bound_port
        self.addCleanup(self.service.stopService)

    async def tcp(self, on_event=None):
        client = await connect_tcp(reactor, "127.0.0.1", self.port, on_event)
        self.addCleanup(client.transport.loseConnection)
        return client

    async def udp(self, on_event=None):
        client = await connect_udp(reactor, "127.0.0.1", self.port, on_event, timeout=0.5)
        self.addCleanup(client.close)
        return client


class ClientLibraryTests(RealServer):
    """The client library against a real server."""

    @defer.inlineCallbacks
    def test_tcp_and_udp_on_same_port(self):
        """TCP and UDP are served on the same port number, sharing one broker."""
        tcp = yield defer.ensureDeferred(self.tcp())
        udp = yield defer.ensureDeferred(self.udp())
        sent = yield udp.command("SEND", payload=b"\x00binary\r\n")
        self.assertEqual(sent.text, "1 queued 9 bytes")
        received = yield tcp.command("RECV")
        self.assertEqual(received.payload, b"\x00binary\r\n")
        error = yield self.assertFailure(udp.command("RECV"), ServerError)
        self.assertEqual(error.code, "empty")

    @defer.inlineCallbacks
    def test_large_datagrams_whole(self):
        """A 60,000-byte message sent over UDP is read whole by the server and comes back whole."""
        udp = yield defer.ensureDeferred(self.udp())
        payload = os.urandom(60000)
        sent = yield udp.command("SEND", payload=payload)
        self.assertEqual(sent.text, "1 queued 60000 bytes")
        received = yield udp.command("RECV")
        self.assertEqual(received.payload, payload)

    @defer.inlineCallbacks
    def test_large_message_over_tcp(self):
        """A message of --max-message bytes crosses TCP intact."""
        tcp = yield defer.ensureDeferred(self.tcp())
        payload = os.urandom(1048576)
        yield tcp.command("SEND", payload=payload)
        received = yield tcp.command("RECV")
        self.assertEqual(received.payload, payload)

    @defer.inlineCallbacks
    def test_concurrent_senders_and_receivers(self):
        """Many clients on both transports: every message is delivered exactly once."""
        senders = yield defer.gatherResults(
            [defer.ensureDeferred(self.tcp()) for _ in range(4)] + [defer.ensureDeferred(self.udp()) for _ in range(2)]
        )
        receivers = yield defer.gatherResults(
            [defer.ensureDeferred(self.tcp()) for _ in range(3)] + [defer.ensureDeferred(self.udp())]
        )
        expected = {b"%d-%d" % (s, n) for s in range(len(senders)) for n in range(25)}
        received: list[bytes] = []

        async def drain(client):
            while True:
                try:
                    reply = await client.command("RECV", "1", **({"wait": 1} if hasattr(client, "retries") else {}))
                except ServerError:
                    return
                received.append(reply.payload)

        async def send_all(index, client):
            for n in range(25):
                await client.command("SEND", payload=b"%d-%d" % (index, n))

        yield defer.gatherResults(
            [defer.ensureDeferred(send_all(i, c)) for i, c in enumerate(senders)]
            + [defer.ensureDeferred(drain(c)) for c in receivers]
        )
        self.assertEqual(len(received), len(expected))
        self.assertEqual(set(received), expected)


class CapTests(RealServer):
    """The client cap on real sockets."""

    options = ["--port", "0", "--store", "memory"]

    @defer.inlineCallbacks
    def test_fourth_refused(self):
        """The 4th TCP client is refused with the original's text."""
        for _ in range(3):
            yield defer.ensureDeferred(self.tcp())
        error = yield self.assertFailure(defer.ensureDeferred(self.tcp()), ServerError)
        self.assertEqual((error.code, error.text), ("full", "Server is full, try again later."))


class QueueClientCliTests(RealServer):
    """msgsvc-client as a user runs it."""

    def run_cli(self, *args: str):
        return run_cli("msgsvc.cli.queue_client", *args)

    @defer.inlineCallbacks
    def test_send_and_receive_both_transports(self):
        """send prints Sent: <n> bytes; receive prints Received: and the message; empty is an error."""
        for transport in ("TCP", "udp"):
            out, err, code = yield self.run_cli("127.0.0.1", str(self.port), transport, "send", "data/message1.txt")
            self.assertEqual((out, code), (b"Sent: 41 bytes\n", 0), err)
            out, err, code = yield self.run_cli("127.0.0.1", str(self.port), transport, "receive")
            self.assertEqual((out, code), (b"Received:\nThis is message one. I am 41 characters.\n", 0), err)
            out, err, code = yield self.run_cli("127.0.0.1", str(self.port), transport, "receive")
            self.assertEqual((out, err, code), (b"", b"Error - no messages in queue.\n", 1))

    @defer.inlineCallbacks
    def test_zero_byte_file(self):
        """An empty file is a valid 0-byte message."""
        out, err, code = yield self.run_cli("127.0.0.1", str(self.port), "TCP", "send", "data/message0.txt")
        self.assertEqual((out, code), (b"Sent: 0 bytes\n", 0), err)

    @defer.inlineCallbacks
    def test_unreachable_and_missing_file(self):
        """An unreachable server or a missing file is one line on stderr and exit status 1."""
        yield self.service.getServiceNamed("listeners").stopService()
        _, err, code = yield self.run_cli("127.0.0.1", str(self.port), "TCP", "receive")
        self.assertEqual(code, 1)
        self.assertIn(b"cannot reach 127.0.0.1:", err)
        out, err, code = yield self.run_cli("127.0.0.1", str(self.port), "TCP", "send", "no/such/file")
        self.assertEqual(out, b"")
        self.assertEqual((code, err), (1, b"msgsvc-client: cannot read no/such/file: No such file or directory\n"))


class UntrustedUdpTests(RealServer):
    """The client library over UDP from an address the server does not trust: it proves its address first."""

    options = [*RealServer.options, "--udp-trusted", "none"]

    @defer.inlineCallbacks
    def test_cookie_lets_the_client_work(self):
        """With its cookie, a client gets large replies, a session and its events, as on a trusted network."""
        client = yield defer.ensureDeferred(self.udp())
        self.assertEqual(len(client.cookie), 16)
        generated = yield client.command("GEN", "60000")
        self.assertEqual(len(generated.payload), 60000)
        named = yield client.command("NAME", "remote")
        self.assertEqual(named.text, "Your name is set as: remote")

    @defer.inlineCallbacks
    def test_without_cookie_little_comes_back(self):
        """The same large request without the cookie gets only a short refusal, at most 3x its size."""
        client = yield defer.ensureDeferred(self.udp())
        client.cookie = None
        error = yield self.assertFailure(client.command("GEN", "60000"), ServerError)
        self.assertEqual(error.code, "too-big")
