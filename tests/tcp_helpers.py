"""Shared fixtures for the TCP front-end tests: a broker to connect to, and a recording literal sink."""

from twisted.trial.unittest import SynchronousTestCase

from msgsvc.transports.tcp import GREETING
from tests.helpers import TcpHarness, make_broker


class Connected(SynchronousTestCase):
    """A broker with a Clock and a way to open TCP connections to it."""

    settings: dict = {}

    def setUp(self):
        self.broker = make_broker(**self.settings)
        self.clock = self.broker.clock
        self.ports = iter(range(40000, 50000))

    def connect(self, table=None) -> TcpHarness:
        return TcpHarness(self.broker, next(self.ports), table)

    def client(self) -> TcpHarness:
        """A connection whose greeting has been read."""
        harness = self.connect()
        self.assertEqual(harness.output(), GREETING)
        return harness


class _Sink:
    """A literal sink recording what it is given."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def finish(self) -> str:
        return f"{sum(map(len, self.parts))} bytes in {len(self.parts)} parts"

    def abort(self) -> None:
        self.aborted = True
