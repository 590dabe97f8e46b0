"""Tests for the twistd plugin, its options and the service it builds."""

from twisted.application.service import IServiceMaker, MultiService
from twisted.internet.testing import MemoryReactor
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from msgsvc.listeners import ListenerService
from msgsvc.tap import BrokerService, Options, makeService


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))
    return options


class PluginTests(SynchronousTestCase):
    """twistd finds the plugin."""

    def test_discovered(self):
        """The msgsvc ServiceMaker is among twistd's plugins and points at msgsvc.tap."""
        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        self.assertIn("msgsvc", makers)
        self.assertIs(makers["msgsvc"].options, Options)


class OptionsTests(SynchronousTestCase):
    """Command-line options and their checks."""

    def test_defaults(self):
        """Defaults are those of the specification."""
        options = parse()
        self.assertEqual((options["port"], options["interface"]), (55556, "127.0.0.1"))
        config = options.config()
        self.assertEqual(
            (config.max_clients, config.idle_timeout, config.max_message, config.max_line),
            (3, 600.0, 1048576, 8192),
        )

    def test_values(self):
        """Options reach the configuration."""
        config = parse("--max-clients", "0", "--idle-timeout", "1.5", "--max-line", "100").config()
        self.assertEqual((config.max_clients, config.idle_timeout, config.max_line), (0, 1.5, 100))

    def test_refused(self):
        """Nonsense values are usage errors, not crashes."""
        for args in (
            ["--no-tcp", "--no-udp"],
            ["--port", "70000"],
            ["--port", "x"],
            ["--max-clients", "-1"],
            ["--idle-timeout", "0"],
            ["--max-line", "0"],
            ["--store", "carrier-pigeon"],
        ):
            self.assertRaises(usage.UsageError, parse, *args)


class MakeServiceTests(SynchronousTestCase):
    """The service tree."""

    def test_tree(self):
        """makeService serves TCP and UDP on one port and stops the broker first."""
        reactor = MemoryReactor()
        service = makeService(parse("--port", "4321", "--store", "memory"), reactor)
        self.assertIsInstance(service, MultiService)
        listener, broker = service.getServiceNamed("listeners"), service.getServiceNamed("broker")
        self.assertIsInstance(listener, ListenerService)
        self.assertIsInstance(broker, BrokerService)
        self.assertEqual(list(service), [listener, broker])
        self.assertEqual((listener.port, listener.interface), (4321, "127.0.0.1"))

    def test_no_udp(self):
        """--no-udp serves TCP only."""
        reactor = MemoryReactor()
        service = makeService(parse("--no-udp", "--port", "4321", "--store", "memory"), reactor)
        service.startService()  # MemoryReactor has no listenUDP: this would fail if UDP were served
        self.assertEqual([port[0] for port in reactor.tcpServers], [4321])
        self.assertIsNone(service.getServiceNamed("listeners").udp)
