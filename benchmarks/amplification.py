"""The UDP amplification table: bytes sent per byte received, per verb, for an unvalidated address.

Everything runs in memory on a :class:`~twisted.internet.task.Clock`: msgsvc's
:class:`~msgsvc.domain.broker.Broker` over a memory store and its UDP front
end on a transport that records what it sends. :func:`populate` gives the
server state that makes listings long (200 queues, a 60,000-byte message, 50
tweets, a chat member); :func:`measure` sends one datagram from an address
outside ``--udp-trusted`` and counts the bytes that come back to it, then and
later. :func:`factors` does that for every request of :data:`REQUESTS`, plain
and tagged, each from its own address; :func:`groups` puts the verbs of equal
factor together, largest first, as docs/protocol.md's table does.
``tests/test_udp_safety.py`` checks every factor against the budget (3).
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.defer import maybeDeferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from msgsvc.client.replies import Reply, ReplyParser
from msgsvc.config import Config
from msgsvc.dispatch.verbs import build_table
from msgsvc.domain.broker import Broker
from msgsvc.store import open_stores
from msgsvc.transports.tcp import Connection
from msgsvc.transports.udp import DatagramFrontEnd

TRUSTED = ("127.0.0.1", 50000)
"""Where :func:`populate` sends from (loopback is trusted by default)."""
UNVALIDATED_HOST = "203.0.113.9"
"""The host the measured requests come from: outside ``--udp-trusted``, without a cookie."""

REQUESTS: dict[str, list[bytes]] = {
    "ACK": [b"ACK 1"],
    "CRT": [b"CRT hello", b"CRT"],
    "DLT": [b"DLT 1"],
    "DWN": [b"DWN 1", b"DWN"],
    "ECHO": [b"ECHO hi", b"ECHO"],
    "EDT": [b"EDT 1 x"],
    "EXIT": [b"EXIT"],
    "FOLLOW": [b"FOLLOW alice"],
    "GEN": [b"GEN 65000", b"GEN 10", b"GEN 100"],
    "GET": [b"GET big.txt", b"GET"],
    "HELP": [b"HELP", b"HELP GEN"],
    "LAST": [b"LAST", b"LAST 100"],
    "LIST": [b"LIST"],
    "LOGIN": [b"LOGIN a b"],
    "LST": [b"LST", b"LST 1"],
    "MSG": [b"MSG hi"],
    "NACK": [b"NACK 1"],
    "NAME": [b"NAME bob"],
    "PING": [b"PING"],
    "QSTAT": [b"QSTAT", b"QSTAT @q1"],
    "QUEUES": [b"QUEUES"],
    "QUIT": [b"QUIT"],
    "RDT": [b"RDT 1", b"RDT"],
    "RECV": [b"RECV", b"RECV @q1"],
    "REGISTER": [b"REGISTER a b"],
    "RESERVE": [b"RESERVE", b"RESERVE @q2"],
    "RMV": [b"RMV 1"],
    "SAY": [b"SAY hi"],
    "SEND": [b"SEND x"],
    "STATUS": [b"STATUS"],
    "STOP": [b"STOP"],
    "STREAM": [b"STREAM 10 1000", b"STREAM 1 5"],
    "TAGGED": [b"TAGGED", b"TAGGED x"],
    "TWEET": [b"TWEET hi"],
    "UNFOLLOW": [b"UNFOLLOW alice"],
    "UPD": [b"UPD a.txt {3}\nabc"],
    "WHO": [b"WHO"],
    "XIT": [b"XIT"],
}
"""Typical small requests of every verb; a verb missing here fails the test (and the table)."""


def settle(broker: Broker) -> None:
    """Let a Clock-driven broker run what is due now (a durable store's grouped commit)."""
    if isinstance(broker.clock, Clock):
        broker.clock.advance(0)


def make_broker(**settings) -> Broker:
    """A broker over a fresh memory store, on a Clock, doing its 'threaded' work at once."""
    clock = Clock()
    return Broker(open_stores("memory", clock), Config(**settings), clock, maybeDeferred)


class RecordingTransport:
    """A datagram transport that keeps what is written to it."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple]] = []

    def write(self, data: bytes, address: tuple) -> None:
        self.sent.append((data, address))


class Harness:
    """A broker's UDP front end on a :class:`RecordingTransport` (the tests' ``UdpHarness`` does the same)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.transport = RecordingTransport()
        self.protocol = DatagramFrontEnd(broker, build_table(), broker.clock)
        self.protocol.makeConnection(self.transport)

    def send(self, datagram: bytes, address: tuple = TRUSTED) -> None:
        """A datagram from ``address``."""
        self.protocol.datagramReceived(datagram, address)

    def datagrams(self, address: tuple = TRUSTED) -> list[bytes]:
        """Datagrams sent to ``address`` since the last call (once pending commits are done)."""
        settle(self.broker)
        mine = [data for data, to in self.transport.sent if to == address]
        self.transport.sent = [(data, to) for data, to in self.transport.sent if to != address]
        return mine

    def command(self, datagram: bytes, address: tuple = TRUSTED) -> Reply:
        """Send one datagram; return its single reply."""
        self.send(datagram, address)
        items = [item for data in self.datagrams(address) for item in ReplyParser().feed(data)]
        (reply,) = [item for item in items if isinstance(item, Reply)]
        return reply


def measure(udp, datagram: bytes, address: tuple) -> float:
    """Send one datagram from ``address``; the bytes sent back to it (now and later) per byte received.

    ``udp`` is a :class:`Harness` (or anything with ``send``, ``datagrams`` and ``broker``).
    """
    udp.send(datagram, address)
    udp.broker.clock.pump([0.01] * 100)  # later replies (a waiting RECV), stream packets
    settle(udp.broker)
    return sum(len(data) for data in udp.datagrams(address)) / len(datagram)


def populate(broker: Broker, udp) -> None:
    """State that makes listings long: many queues, messages, tweets, posts, a chat member."""
    for n in range(200):
        assert udp.command(b"SEND @q%d {1000}\n" % n + b"m" * 1000, TRUSTED).kind == "OK"
    assert udp.command(b"SEND @q1 {60000}\n" + b"x" * 60000, TRUSTED).kind == "OK"
    for n in range(50):
        assert udp.command(b"TWEET #x tweet number %d" % n, TRUSTED).kind == "OK"
    member = Connection(broker, build_table(), broker.clock)
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
    member.makeConnection(transport)
    member.dataReceived(b"NAME alice\n")
    settle(broker)
    assert b"OK" in transport.value(), transport.value()


def factors(requests: dict[str, list[bytes]] | None = None) -> dict[str, float]:
    """The largest bytes-out/bytes-in of each verb's requests, plain and tagged, from unvalidated addresses."""
    requests = REQUESTS if requests is None else requests
    broker = make_broker(max_clients=0)
    udp = Harness(broker)
    populate(broker, udp)
    found: dict[str, float] = {}
    port = 1000
    for verb, datagrams in requests.items():
        for datagram in datagrams:
            for request in (datagram, b"#t1 " + datagram):
                port += 1
                factor = measure(udp, request, (UNVALIDATED_HOST, port))
                found[verb] = max(found.get(verb, 0.0), factor)
    return found


def groups(by_verb: dict[str, float], digits: int = 2) -> list[tuple[float, list[str]]]:
    """(factor, verbs) with the verbs of equal factor (to ``digits`` decimals) together, largest factor first."""
    grouped: dict[float, list[str]] = {}
    for verb, factor in by_verb.items():
        grouped.setdefault(round(factor, digits), []).append(verb)
    return [(factor, sorted(grouped[factor])) for factor in sorted(grouped, reverse=True)]
