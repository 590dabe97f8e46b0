"""``--listen``: endpoint strings read and checked, extra listeners bound, checked before the fork, logged."""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol, Factory
from twisted.internet.testing import MemoryReactor
from twisted.python import usage
from twisted.trial.unittest import TestCase

from msgsvc.client import connect_tcp
from msgsvc.dispatch.verbs import build_table
from msgsvc.tap import makeService
from msgsvc.transports.endpoints import LISTEN_BACKLOG, ListenSpec, parse_listen
from msgsvc.transports.listeners import ListenerService, StartupError
from msgsvc.transports.tcp import ConnectionFactory
from tests.certs import self_signed
from tests.helpers import make_broker, temp_dir
from tests.test_tap import parse


class ParseTests(TestCase):
    """Endpoint strings as Twisted spells them."""

    def test_tcp(self) -> None:
        """tcp:PORT listens on every IPv4 address by default; interface= and backlog= are read."""
        self.assertEqual(parse_listen("tcp:55557"), ListenSpec("tcp:55557", 55557, "0.0.0.0", LISTEN_BACKLOG))
        spec = parse_listen("tcp:0:interface=\\:\\:1:backlog=10")
        self.assertEqual((spec.port, spec.interface, spec.backlog, spec.key_files), (0, "::1", 10, None))

    def test_ssl(self) -> None:
        """ssl: takes privateKey= and certKey= (which defaults to the key's file, as in Twisted)."""
        spec = parse_listen("SSL:55443:privateKey=k.pem:certKey=c.pem")
        self.assertEqual((spec.port, spec.key_files), (55443, ("k.pem", "c.pem")))
        self.assertEqual(parse_listen("ssl:55443:privateKey=both.pem").key_files, ("both.pem", "both.pem"))

    def test_refused(self) -> None:
        """Other endpoint types, missing or extra ports, unknown keywords and bad numbers are ValueErrors."""
        for description, reason in (
            ("unix:/tmp/sock", "not a tcp: or ssl: endpoint"),
            ("tcp", "give one port number"),
            ("tcp:1:2", "give one port number"),
            ("tcp:x", "port must be a number from 0 to 65535, not 'x'"),
            ("tcp:70000", "port must be a number"),
            ("tcp:1:backlog=-1", "backlog must be a number"),
            ("tcp:1:privateKey=k.pem", "tcp: takes interface=, backlog=, not privateKey="),
            ("ssl:1:sslmethod=TLSv1_METHOD", "ssl: takes interface=, backlog=, privateKey=, certKey=, not sslmethod="),
        ):
            error = self.assertRaises(ValueError, parse_listen, description)
            self.assertIn(reason, str(error))


class OptionTests(TestCase):
    """--listen on the command line."""

    def test_repeatable(self) -> None:
        """--listen may be given several times; each becomes a ListenSpec, in order."""
        key, cert = self_signed(temp_dir(self))
        options = parse("--listen", "tcp:55557", "--listen", f"ssl:55443:privateKey={key}:certKey={cert}")
        self.assertEqual([spec.port for spec in options.listens], [55557, 55443])
        self.assertEqual(options.listens[1].key_files, (key, cert))
        self.assertEqual(parse().listens, [])

    def test_usage_errors(self) -> None:
        """A bad endpoint string, or an ssl: certificate that cannot be used, is a usage error naming it."""
        directory = temp_dir(self)
        key, cert = self_signed(directory)
        other_key, _ = self_signed(directory, "other")
        for description, reason in (
            ("unix:/tmp/s", "--listen unix:/tmp/s: not a tcp: or ssl: endpoint"),
            (f"ssl:1:privateKey={directory}/none.key", f"cannot read {directory}/none.key: No such file"),
            (f"ssl:1:privateKey={cert}:certKey={cert}", f"{cert} holds no PEM private key"),
            (f"ssl:1:privateKey={key}:certKey={key}", f"{key} holds no PEM certificate"),
            (f"ssl:1:privateKey={other_key}:certKey={cert}", "is not the private key of the certificate"),
        ):
            error = self.assertRaises(usage.UsageError, parse, "--listen", description)
            self.assertIn(reason, str(error))

    def test_plaintext_auth_flag(self) -> None:
        """--allow-plaintext-auth reaches the configuration; it is off by default."""
        self.assertFalse(parse().config().allow_plaintext_auth)
        self.assertTrue(parse("--allow-plaintext-auth").config().allow_plaintext_auth)


class ListenerTests(TestCase):
    """Extra listeners bound with the main port, and failures before and at the start."""

    async def test_extra_tcp_serves(self) -> None:
        """A tcp: listener serves the same protocol as the main port, even when the main port is UDP only."""
        broker = make_broker(reactor, max_clients=0)
        self.addCleanup(broker.shutdown)
        spec = parse_listen("tcp:0:interface=127.0.0.1")
        service = ListenerService(reactor, "127.0.0.1", 0, None, DatagramProtocol(), [spec])
        service.stream = ConnectionFactory(broker, build_table(), reactor)
        service.startService()
        self.addCleanup(service.stopService)
        client = await connect_tcp(reactor, "127.0.0.1", service.extra[0].getHost().port)
        self.assertEqual((await client.command("PING")).text, "PONG")
        client.abort()
        await client.disconnected

    def test_taken_port_before_the_fork(self) -> None:
        """makeService with a --listen port in use ends at once with the one-line reason."""
        taken = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        self.addCleanup(taken.stopListening)
        port = taken.getHost().port
        options = parse("--port", "0", "--store", "memory", "--listen", f"tcp:{port}:interface=127.0.0.1")
        error = self.assertRaises(SystemExit, makeService, options, MemoryReactor())
        self.assertEqual(str(error), f"msgsvc: cannot listen on 127.0.0.1:{port}: Address already in use")

    def test_taken_port_at_start(self) -> None:
        """A --listen port taken at the start is a StartupError, and the main port is let go too."""
        taken = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        self.addCleanup(taken.stopListening)
        port = taken.getHost().port
        service = ListenerService(
            reactor, "127.0.0.1", 0, Factory(), None, [parse_listen(f"tcp:{port}:interface=127.0.0.1")]
        )
        error = self.assertRaises(StartupError, service.privilegedStartService)
        self.assertEqual(str(error), f"cannot listen on 127.0.0.1:{port}: Address already in use")
        self.assertEqual((service.listening, service.extra), ([], []))

    def test_certificate_gone_at_start(self) -> None:
        """An ssl: certificate unusable when the daemon binds is a StartupError naming the listener."""
        directory = temp_dir(self)
        spec = parse_listen(f"ssl:0:privateKey={directory}/gone.key:interface=127.0.0.1")
        service = ListenerService(reactor, "127.0.0.1", 0, Factory(), None, [spec])
        error = self.assertRaises(StartupError, service.privilegedStartService)
        self.assertIn(f"--listen {spec.description}: cannot read {directory}/gone.key", str(error))
        self.assertEqual((service.listening, service.extra, service.hangup), ([], [], None))
