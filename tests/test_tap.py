"""Tests for the twistd plugin, its options and the service it builds."""

import os

from twisted.application.service import IServiceMaker, MultiService
from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol, Factory
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor, MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase, TestCase

from msgsvc import startup
from msgsvc.startup import BrokerService, StartupService, check_port
from msgsvc.store import StoreError
from msgsvc.store.database import Database
from msgsvc.tap import Options, makeService
from msgsvc.transports.listeners import ListenerService, StartupError
from msgsvc.web.service import WebService
from tests.helpers import temp_dir


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))
    return options


class PluginTests(SynchronousTestCase):
    """twistd finds the plugin."""

    def test_discovered(self) -> None:
        """The msgsvc ServiceMaker is among twistd's plugins and points at msgsvc.tap."""
        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        self.assertIn("msgsvc", makers)
        self.assertIs(makers["msgsvc"].options, Options)


class OptionsTests(SynchronousTestCase):
    """Command-line options and their checks."""

    def test_defaults(self) -> None:
        """Defaults are those of the specification."""
        options = parse()
        self.assertEqual((options["port"], options["interface"]), (55556, "127.0.0.1"))
        config = options.config()
        self.assertEqual(
            (config.max_clients, config.idle_timeout, config.max_message, config.max_line),
            (3, 600.0, 1048576, 8192),
        )

    def test_values(self) -> None:
        """Options reach the configuration."""
        config = parse("--max-clients", "0", "--idle-timeout", "1.5", "--max-line", "100").config()
        self.assertEqual((config.max_clients, config.idle_timeout, config.max_line), (0, 1.5, 100))

    def test_refused(self) -> None:
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
    """The service tree, and what happens when it starts."""

    def test_tree(self) -> None:
        """makeService opens and binds nothing: the store opens, then the ports bind, then the broker runs."""
        reactor = MemoryReactor()
        service = makeService(parse("--port", "0", "--store", "memory"), reactor)
        self.assertIsInstance(service, MultiService)
        startup = service.getServiceNamed("startup")
        listener, broker = service.getServiceNamed("listeners"), service.getServiceNamed("broker")
        self.assertIsInstance(startup, StartupService)
        self.assertIsInstance(listener, ListenerService)
        self.assertIsInstance(broker, BrokerService)
        self.assertEqual(list(service), [startup, listener, broker])
        self.assertEqual((listener.port, listener.interface), (0, "127.0.0.1"))
        self.assertEqual((broker.broker, listener.tcp, listener.udp, reactor.tcpServers), (None, None, None, []))

    def test_no_udp(self) -> None:
        """--no-udp serves TCP only."""
        reactor = MemoryReactor()
        service = makeService(parse("--no-udp", "--port", "0", "--store", "memory"), reactor)
        service.startService()  # MemoryReactor has no listenUDP: this would fail if UDP were served
        self.assertEqual([port[0] for port in reactor.tcpServers], [0])
        self.assertIsNone(service.getServiceNamed("listeners").udp)
        self.assertIsNotNone(service.getServiceNamed("broker").broker)
        self.successResultOf(service.stopService())

    def test_store_locked_at_start(self) -> None:
        """makeService only tries the store and lets it go; privilegedStartService (after the fork) locks it,
        and tunes the garbage collector of the serving process."""
        tuned: list[None] = []
        self.patch(startup, "tune_collector", lambda: tuned.append(None))
        path = os.path.join(temp_dir(self), "msgsvc.sqlite")
        reactor = MemoryReactor()
        service = makeService(parse("--no-udp", "--port", "0", "--store", "sqlite:" + path), reactor)
        Database(path, Clock()).close()  # not held
        service.privilegedStartService()
        self.assertEqual(tuned, [None])
        self.assertRaises(StoreError, Database, path, Clock())
        self.assertEqual([port[0] for port in reactor.tcpServers], [0])  # bound before privileges are shed
        self.assertIsNotNone(service.getServiceNamed("broker").broker)
        service.startService()
        self.assertEqual(len(reactor.tcpServers), 1)  # not bound twice
        self.successResultOf(service.stopService())
        Database(path, Clock()).close()  # released

    def test_store_in_use(self) -> None:
        """A store held by another msgsvc ends makeService with the one-line reason, binding nothing."""
        path = os.path.join(temp_dir(self), "msgsvc.sqlite")
        held = Database(path, Clock())
        self.addCleanup(held.close)
        reactor = MemoryReactor()
        error = self.assertRaises(SystemExit, makeService, parse("--no-udp", "--store", "sqlite:" + path), reactor)
        self.assertEqual(str(error), f"msgsvc: {path} is in use by another msgsvc process")
        self.assertEqual(reactor.tcpServers, [])

    def test_store_taken_after_the_check(self) -> None:
        """A store taken between the check and the start stops the start with a StartupError."""
        path = os.path.join(temp_dir(self), "msgsvc.sqlite")
        reactor = MemoryReactor()
        service = makeService(parse("--no-udp", "--port", "0", "--store", "sqlite:" + path), reactor)
        held = Database(path, Clock())
        self.addCleanup(held.close)
        error = self.assertRaises(StartupError, service.privilegedStartService)
        self.assertEqual(str(error), f"{path} is in use by another msgsvc process")
        self.assertEqual(reactor.tcpServers, [])


class TakenPortTests(TestCase):
    """A port in use, in this process."""

    def test_startup_error(self) -> None:
        """A taken port raises StartupError naming it, in one line, and leaves nothing listening."""
        taken = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        self.addCleanup(taken.stopListening)
        port = taken.getHost().port
        service = ListenerService(reactor, "127.0.0.1", port, Factory(), DatagramProtocol())
        error = self.assertRaises(StartupError, service.privilegedStartService)
        self.assertEqual(str(error), f"cannot listen on 127.0.0.1:{port}: Address already in use")
        self.assertEqual(service.listening, [])

    def test_checked_before_the_fork(self) -> None:
        """makeService on a taken port ends at once with the one-line reason."""
        taken = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        self.addCleanup(taken.stopListening)
        port = taken.getHost().port
        options = parse("--port", str(port), "--store", "memory")
        error = self.assertRaises(SystemExit, makeService, options, MemoryReactor())
        self.assertEqual(str(error), f"msgsvc: cannot listen on 127.0.0.1:{port}: Address already in use")

    def test_check_port_udp(self) -> None:
        """check_port also refuses a UDP port in use, and accepts a free one."""
        taken = reactor.listenUDP(0, DatagramProtocol(), interface="127.0.0.1")
        self.addCleanup(taken.stopListening)
        port = taken.getHost().port
        self.assertRaises(StartupError, check_port, "127.0.0.1", port, tcp=False, udp=True)
        check_port("127.0.0.1", port, tcp=False, udp=False)


class WebOptionTests(TestCase):
    """--web: checked when parsed, served by the service tree, its port tried before the fork."""

    def test_refused(self) -> None:
        """An endpoint Twisted cannot build is a usage error naming the option."""
        for description in ("carrier-pigeon:80", "tcp:notaport", "ssl:8443:privateKey=/nonexistent/key.pem"):
            error = self.assertRaises(usage.UsageError, parse, "--web", description)
            self.assertTrue(str(error).startswith(f"--web {description}: "), str(error))

    def test_served(self) -> None:
        """With --web the tree has a web service after the listeners, bound when the application starts."""
        reactor = MemoryReactorClock()
        service = makeService(parse("--no-udp", "--port", "0", "--store", "memory", "--web", "tcp:8080"), reactor)
        web = service.getServiceNamed("web")
        self.assertIsInstance(web, WebService)
        self.assertEqual(list(service)[2:], [web, service.getServiceNamed("broker")])
        service.privilegedStartService()
        self.assertIsNotNone(web.site)
        self.assertEqual([port[0] for port in reactor.tcpServers], [0, 8080])
        service.startService()
        self.assertEqual(len(reactor.tcpServers), 2)  # not bound twice
        self.successResultOf(service.stopService())

    def test_without(self) -> None:
        """Without --web there is no web service."""
        service = makeService(parse("--port", "0", "--store", "memory"), MemoryReactor())
        self.assertNotIn("web", [child.name for child in service])

    def test_taken_port_checked_before_the_fork(self) -> None:
        """makeService with a taken --web port ends at once with the one-line reason."""
        taken = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        self.addCleanup(taken.stopListening)
        port = taken.getHost().port
        options = parse("--port", "0", "--store", "memory", "--web", f"tcp:{port}:interface=127.0.0.1")
        error = self.assertRaises(SystemExit, makeService, options, MemoryReactor())
        self.assertEqual(str(error), f"msgsvc: cannot listen on 127.0.0.1:{port}: Address already in use")
