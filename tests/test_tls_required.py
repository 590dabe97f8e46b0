"""ERR tls-required: LOGIN and REGISTER from another host need TLS, unless --allow-plaintext-auth."""

from __future__ import annotations

import ipaddress

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from msgsvc.client.replies import Reply, ReplyParser
from msgsvc.dispatch.plaintext_auth import is_loopback
from msgsvc.dispatch.verbs import build_table
from msgsvc.domain.broker import Broker
from msgsvc.transports.tcp import Connection
from tests.helpers import UdpHarness, settle
from tests.test_accounts import forum_broker, result_of
from tests.wshelpers import WebHarness

REMOTE = IPv4Address("TCP", "203.0.113.5", 1234)
LOOPBACK = IPv4Address("TCP", "127.0.0.1", 1234)


@implementer(ISSLTransport)
class TlsStringTransport(StringTransport):
    """A StringTransport that is TLS, as Twisted's TLS transports say they are."""

    def setTcpNoDelay(self, enabled: bool) -> None:
        """Nothing to tune in memory."""


class Client:
    """One TCP connection from ``peer``, TLS or not, over a StringTransport."""

    def __init__(self, broker: Broker, peer: IPv4Address | IPv6Address, tls: bool = False) -> None:
        self.broker = broker
        self.transport = (TlsStringTransport if tls else StringTransport)(peerAddress=peer)
        self.protocol = Connection(broker, build_table(), broker.clock)
        self.protocol.makeConnection(self.transport)
        if tls:
            self.protocol.handshakeCompleted()
        self.transport.clear()  # the greeting

    def command(self, line: bytes) -> Reply:
        """Send one command line; its single reply."""
        self.protocol.dataReceived(line + b"\n")
        settle(self.broker)
        (reply,) = ReplyParser().feed(self.transport.value())
        self.transport.clear()
        assert isinstance(reply, Reply)
        return reply


class TlsRequiredTests(TestCase):
    """Who may send a password over which channel."""

    def setUp(self) -> None:
        self.broker = self.make()
        result_of(self.broker.forum.accounts.import_credentials([("alice", "secret")]))

    def make(self, **settings: object) -> Broker:
        """A forum broker with cheap hashing and no client cap."""
        broker = forum_broker(Clock(), max_clients=0, **settings)
        self.addCleanup(broker.stores.close)
        return broker

    def assertRefused(self, reply: Reply) -> None:
        """``reply`` is ERR tls-required with its explanation."""
        self.assertEqual((reply.kind, reply.code), ("ERR", "tls-required"))
        self.assertIn("needs TLS", reply.text)

    def test_login_from_remote_plaintext(self) -> None:
        """LOGIN from a non-loopback peer over plain TCP is refused with tls-required, and logs nobody in."""
        client = Client(self.broker, REMOTE)
        self.assertRefused(client.command(b"LOGIN alice secret"))
        self.assertEqual(client.command(b"LST").code, "not-logged-in")

    def test_register_from_remote_plaintext(self) -> None:
        """REGISTER from a non-loopback peer over plain TCP is refused and creates no account."""
        client = Client(self.broker, REMOTE)
        self.assertRefused(client.command(b"REGISTER bob hunter22"))
        self.assertEqual(Client(self.broker, LOOPBACK).command(b"LOGIN bob hunter22").code, "no-user")

    def test_allowed_with_flag(self) -> None:
        """With --allow-plaintext-auth a remote plaintext client logs in and registers."""
        broker = self.make(allow_plaintext_auth=True)
        result_of(broker.forum.accounts.import_credentials([("alice", "secret")]))
        self.assertEqual(Client(broker, REMOTE).command(b"LOGIN alice secret").kind, "OK")
        self.assertEqual(Client(broker, REMOTE).command(b"REGISTER bob hunter22").kind, "OK")

    def test_allowed_from_loopback(self) -> None:
        """A client on this machine (127.0.0.1 or ::1) logs in and registers over plain TCP."""
        self.assertEqual(Client(self.broker, LOOPBACK).command(b"LOGIN alice secret").kind, "OK")
        client = Client(self.broker, IPv6Address("TCP", "::1", 1234))
        self.assertEqual(client.command(b"REGISTER bob hunter22").kind, "OK")

    def test_allowed_over_tls(self) -> None:
        """A remote client whose transport is TLS logs in and registers."""
        self.assertEqual(Client(self.broker, REMOTE, tls=True).command(b"LOGIN alice secret").kind, "OK")
        self.assertEqual(Client(self.broker, REMOTE, tls=True).command(b"REGISTER bob hunter22").kind, "OK")

    def test_udp_by_peer_address(self) -> None:
        """UDP sessions are never secure: a remote LOGIN is refused, a loopback one accepted."""
        broker = self.make(udp_trusted=(ipaddress.ip_network("0.0.0.0/0"),))  # no cookies to ask for
        result_of(broker.forum.accounts.import_credentials([("alice", "secret")]))
        udp = UdpHarness(broker)
        remote = ("203.0.113.5", 5000)
        self.assertRefused(udp.command(b"&alicekey1 LOGIN alice secret", remote))
        self.assertEqual(udp.command(b"&alicekey1 LOGIN alice secret").kind, "OK")

    def test_help_lists_the_code(self) -> None:
        """HELP LOGIN and HELP REGISTER name tls-required among their errors."""
        client = Client(self.broker, REMOTE)
        for verb in (b"LOGIN", b"REGISTER"):
            self.assertIn("tls-required", client.command(b"HELP " + verb).payload.decode())

    def test_is_loopback(self) -> None:
        """Loopback addresses, v4, v6 and v4-mapped, count as this machine; others and non-IPs do not."""
        for host in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
            self.assertTrue(is_loopback(host), host)
        for host in ("203.0.113.5", "::ffff:203.0.113.5", "2001:db8::1", "0.0.0.0", "localhost", ""):
            self.assertFalse(is_loopback(host), host)


class WebSocketTlsRequiredTests(TestCase):
    """A WebSocket client is held to the same rule: its channel has no TLS unless it came over WSS."""

    def test_plain_websocket_from_afar(self) -> None:
        """LOGIN over plain ws:// from another host is tls-required."""
        harness = WebHarness()
        client = harness.connect()
        harness.flush()
        client.take()
        (reply,) = harness.exchange(client, b"LOGIN alice pw")
        self.assertTrue(reply.startswith(b"ERR tls-required "))
