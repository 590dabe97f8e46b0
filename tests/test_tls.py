"""TLS listeners: a real handshake, certificates reloaded without dropping connections, and the clients' --tls."""

from __future__ import annotations

import os
import signal

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.logger import LogEvent, formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from msgsvc.client import TcpClient, TlsFailure, client_tls, connect_tcp
from msgsvc.client.replies import Event
from msgsvc.dispatch.verbs import build_table
from msgsvc.domain.broker import Broker
from msgsvc.transports.endpoints import parse_listen
from msgsvc.transports.listeners import ListenerService
from msgsvc.transports.tcp import ConnectionFactory
from msgsvc.transports.tls import ReloadableCertificate
from tests.certs import self_signed
from tests.helpers import make_broker, run_cli, temp_dir
from tests.test_forum_cli import run_forum


class TlsServerCase(TestCase):
    """A broker served over plain TCP on one port and over TLS (``--listen ssl:``) on another."""

    def setUp(self) -> None:
        self.directory = temp_dir(self)
        self.key, self.cert = self_signed(self.directory)
        self.broker: Broker = make_broker(reactor, max_clients=0, password_cost=1)
        self.started: list[str] = []
        globalLogPublisher.addObserver(self.observe)
        self.addCleanup(globalLogPublisher.removeObserver, self.observe)
        spec = parse_listen(f"ssl:0:privateKey={self.key}:certKey={self.cert}:interface=127.0.0.1")
        tcp = ConnectionFactory(self.broker, build_table(), reactor)
        self.listener = ListenerService(reactor, "127.0.0.1", 0, tcp, None, [spec])
        self.listener.startService()
        self.addCleanup(self.listener.stopService)
        self.addCleanup(self.broker.shutdown)
        self.port = self.listener.extra[0].getHost().port

    def observe(self, event: LogEvent) -> None:
        """Keep the 'Server started' lines."""
        text = formatEvent(event)
        if text.startswith("Server started"):
            self.started.append(text)

    async def connect(self, cafile: str | None = None, **kwargs: object) -> TcpClient:
        """A TLS client trusting ``cafile`` (the server's certificate by default); closed after the test."""
        tls = client_tls("127.0.0.1", cafile or self.cert)
        client = await connect_tcp(reactor, "127.0.0.1", self.port, tls=tls, **kwargs)  # type: ignore[arg-type]
        self.addCleanup(self.close, client)
        return client

    async def close(self, client: TcpClient) -> None:
        """Drop the connection and wait until it is gone."""
        if not client.disconnected.called:
            client.abort()
            await client.disconnected


class HandshakeTests(TlsServerCase):
    """A client that verifies the server's certificate talks to it as over TCP."""

    async def test_ping_and_chat(self) -> None:
        """Over a verified TLS connection PING answers and chat events arrive."""
        heard: list[Event] = []
        alice = await self.connect()
        bob = await self.connect(on_event=heard.append)
        self.assertEqual((await alice.command("PING")).text, "PONG")
        await alice.command("NAME", "alice")
        await bob.command("NAME", "bob")
        await alice.command("SAY", "hello over TLS")
        await bob.command("PING")  # the event came before this reply
        self.assertIn(("CHAT", "alice hello over TLS"), [(event.name, event.args) for event in heard])

    async def test_session_is_secure(self) -> None:
        """The server marks a TLS client's session secure (so it may log in from anywhere) and names it tls."""
        await self.connect()
        self.assertEqual([(s.secure, s.transport_name) for s in self.broker.sessions], [(True, "tls")])

    async def test_wrong_ca(self) -> None:
        """A client trusting another CA refuses the server: TlsFailure with a one-line reason."""
        _, other = self_signed(self.directory, "other")
        failure = await self.assertFailure(
            connect_tcp(reactor, "127.0.0.1", self.port, tls=client_tls("127.0.0.1", other)), TlsFailure
        )
        self.assertIn("certificate verify failed", str(failure))
        self.assertNotIn("\n", str(failure))

    async def test_wrong_host(self) -> None:
        """A certificate from a trusted CA but for another host is refused: TlsFailure saying so."""
        tls = client_tls("msg.example.org", self.cert)
        failure = await self.assertFailure(connect_tcp(reactor, "127.0.0.1", self.port, tls=tls), TlsFailure)
        self.assertIn("certificate is for another host name", str(failure))

    def test_bad_cafile(self) -> None:
        """An unreadable or empty --cafile is a ValueError saying so."""
        self.assertRaises(ValueError, client_tls, "127.0.0.1", self.directory + "/missing.pem")
        self.assertRaises(ValueError, client_tls, "127.0.0.1", self.key)

    def test_log_names_listener(self) -> None:
        """The log says where the TLS listener listens."""
        self.assertIn(f"Server started on 127.0.0.1:{self.port} (TLS)", self.started)


class ReloadTests(TlsServerCase):
    """Certificates re-read on SIGHUP: new connections get the new one, open ones stay."""

    async def test_reload(self) -> None:
        """After the files change and reload() runs, new clients see the new certificate; old ones keep talking."""
        old_cert = self.directory + "/old.pem"
        with open(self.cert, "rb") as source, open(old_cert, "wb") as copy:
            copy.write(source.read())
        before = await self.connect()
        self_signed(self.directory)  # new key and certificate over the same files
        assert self.listener.hangup is not None
        self.listener.hangup.reload()
        after = await self.connect()
        self.assertEqual((await after.command("PING")).text, "PONG")
        await self.assertFailure(
            connect_tcp(reactor, "127.0.0.1", self.port, tls=client_tls("127.0.0.1", old_cert)), TlsFailure
        )
        self.assertEqual((await before.command("PING")).text, "PONG")

    async def test_failed_reload_keeps_certificate(self) -> None:
        """A reload of unusable files fails, logs why, and the certificate in use stays."""
        with open(self.cert, "rb") as file:
            good = file.read()
        with open(self.cert, "wb") as file:
            file.write(b"not a certificate")
        errors: list[str] = []

        def observe(event: LogEvent) -> None:
            if event.get("log_namespace") == "msgsvc.transports.tls":
                errors.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        with open(self.cert + ".good", "wb") as file:
            file.write(good)
        assert self.listener.hangup is not None
        (certificate,) = self.listener.hangup.certificates
        self.assertFalse(certificate.reload())
        self.assertEqual(len(errors), 1)
        self.assertIn("holds no PEM certificate; still using the one loaded before", errors[0])
        client = await self.connect(self.cert + ".good")
        self.assertEqual((await client.command("PING")).text, "PONG")

    async def test_sighup(self) -> None:
        """While ssl: listeners listen a SIGHUP reloads their certificates; stopping gives the old handler back."""
        hangup = self.listener.hangup
        assert hangup is not None
        self.assertIs(getattr(signal.getsignal(signal.SIGHUP), "__self__", None), hangup)
        reloaded: Deferred[None] = Deferred()
        hangup.reload = lambda: reloaded.callback(None)  # type: ignore[method-assign]
        os.kill(os.getpid(), signal.SIGHUP)
        await reloaded
        await self.listener.stopService()
        self.assertIsNot(getattr(signal.getsignal(signal.SIGHUP), "__self__", None), hangup)

    def test_unusable_at_start(self) -> None:
        """Files that cannot be used make a ValueError naming them; a key of another certificate too."""
        other_key, _ = self_signed(self.directory, "other")
        self.assertRaises(ValueError, ReloadableCertificate, self.directory + "/none.key", self.cert)
        error = self.assertRaises(ValueError, ReloadableCertificate, other_key, self.cert)
        self.assertIn("is not the private key of the certificate", str(error))


class CliTests(TlsServerCase):
    """msgsvc-chat and msgsvc-forum with --tls."""

    async def test_forum_verified(self) -> None:
        """msgsvc-forum --tls --cafile registers and logs in over the TLS listener."""
        out, err, code = await run_forum(
            self.port, b"alice\npw\ny\nXIT\n", "--tls", "--cafile", self.cert, cwd=self.directory
        )
        self.assertEqual((out, err, code), ("Welcome to the forum\nbye\n", "", 0))

    async def test_wrong_ca_fails(self) -> None:
        """msgsvc-chat and msgsvc-forum with a CA that did not sign the server's certificate: one line, exit 1."""
        _, other = self_signed(self.directory, "other")
        for module in ("msgsvc.cli.chat", "msgsvc.cli.forum"):
            _, err, code = await run_cli(module, "127.0.0.1", str(self.port), "--tls", "--cafile", other)
            self.assertEqual(code, 1, module)
            self.assertEqual(err.count(b"\n"), 1, err)
            self.assertIn(b"TLS", err)
