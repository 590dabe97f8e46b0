"""The shared base of the chat tests: a broker with a files directory, and named clients."""

from twisted.trial.unittest import TestCase

from msgsvc.client import Event
from tests.helpers import TcpHarness, make_broker, temp_dir


class ChatCase(TestCase):
    """A broker with a files directory, and helpers to connect named clients."""

    def setUp(self):
        self.files = temp_dir(self)
        self.broker = make_broker(max_clients=0, files=self.files, history=1000, password_cost=1)
        self.clock = self.broker.clock
        self.ports = iter(range(41000, 42000))

    def client(self, name: str | None = None) -> TcpHarness:
        harness = TcpHarness(self.broker, next(self.ports))
        harness.output()
        if name is not None:
            self.assertEqual(harness.command(b"NAME " + name.encode()).text, f"Your name is set as: {name}")
        return harness

    def events(self, harness) -> list[tuple[str, str]]:
        return [(item.name, item.args) for item in harness.received() if isinstance(item, Event)]
