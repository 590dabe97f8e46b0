"""Property-based tests (Hypothesis): whatever bytes arrive, the server answers well-formed replies and carries on."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import provider

from msgsvc.dispatch.verbs import build_table
from msgsvc.domain.broker import Broker
from msgsvc.protocol.wire import parse_request
from msgsvc.transports.tcp import Connection, ConnectionFactory
from tests.helpers import ROOT, UdpHarness, make_broker, settle
from tests.test_commands import SPEC_ERROR_CODES

SETTINGS = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
"""Modest and repeatable: the suite stays fast and a failure shows again on the next run."""

TABLE = build_table()

TOKENS = [
    *(b"PING\n", b"PING", b" PING\n", b"ping\r\n", b"HELP\n", b"HELP SEND\n", b"help xit\n", b"HELP NOSUCH\n"),
    *(b"QUIT\n", b"EXIT\n", b"SEND hi\n", b"SEND @q  two  spaces \n", b"SEND {3}\nabc\n", b"SEND {0}\n", b"RECV\n"),
    *(
        b"RECV @q\n",
        b"RESERVE\n",
        b"ACK 1\n",
        b"NACK 1\n",
        b"QSTAT\n",
        b"QUEUES\n",
        b"ECHO  a \n",
        b"ECHO {4}\r\na\nb\r",
    ),
    *(b"NAME bob\n", b"NAME ann\n", b"SAY hi\n", b"WHO\n", b"STATUS\n", b"LIST\n", b"GET info.txt\n", b"GET ../x\n"),
    *(b"TWEET hi #tag\n", b"LAST\n", b"TAGGED #tag 2\n", b"FOLLOW #tag\n", b"UNFOLLOW #ALL\n", b"GEN 300\n", b"STOP\n"),
    *(b"REGISTER ann pw12\n", b"LOGIN ann pw12\n", b"LOGIN ann nope\n", b"CRT t\n", b"MSG t hello\n", b"RDT t\n"),
    *(b"LST\n", b"EDT t 1 bye\n", b"DLT t 1\n", b"UPD t f {3}\nxyz\n", b"DWN t f\n", b"RMV t\n", b"GEN 99999\n"),
    *(b"#t1 ", b"#", b"#bad! ", b"#abcdefghijklmnopq ", b" ", b"  ", b"\n", b"\r\n", b"\r", b"{", b"}", b"{5}"),
    *(b" {3}\n", b" {0}\n", b" {99999}\n", b" {" + b"9" * 5000 + b"}\n", b" {00000000000000000000000001}\n"),
    *(b"\x00", b"\xff\xfe", b"\t", b"x" * 150, b"y" * 8200, b"9" * 30, b"\xc3\xa9"),
]
"""Pieces of input, valid and not, that Hypothesis strings together with random bytes."""

STREAMS = st.lists(st.one_of(st.sampled_from(TOKENS), st.binary(max_size=16)), max_size=25).map(b"".join)
LINES = st.lists(
    st.one_of(st.sampled_from([token.rstrip(b"\r\n") for token in TOKENS]), st.binary(max_size=16)), max_size=8
).map(b"".join)
"""Command lines (no line ending) made of the same pieces."""
MARKERS = st.text("0123456789", min_size=0, max_size=6000).map(lambda digits: b" {" + digits.encode() + b"}")
"""Literal markers of any length, up to thousands of digits."""

FIXED = (
    b"PING\nSEND {5}\r\nab\ncd\r\nRECV\n#t1 ECHO  x \nhelp send\nSEND hello\nQSTAT\nGEN 300\nNAME bob\n"
    b"SAY hi there\nWHO\nFOLLOW #tag\nTWEET hi #tag\nLAST\nECHO {0}\n\n   \n #t2  PING\nBOGUS\nHELP\nQUIT\nPING\n"
)
"""A valid session whose replies do not depend on how its bytes are cut."""

_TAG = re.compile(rb"#[A-Za-z0-9]{1,16} ")
_DATA = re.compile(rb"DATA (0|[1-9][0-9]*)(?: (.*))?\Z", re.S)


def new_broker() -> Broker:
    """A fresh memory broker on a Clock, with small limits so random input reaches them."""
    return make_broker(
        files=os.path.join(ROOT, "data"), password_cost=1, max_message=5000, max_gen=5000, max_upload=5000
    )


def items(output: bytes) -> list[tuple[str, bytes]]:
    """Split what the server sent into (kind, line) items; AssertionError on anything not well-formed.

    Kinds: ``event`` (``* ...``), ``ok``, ``err`` (its code from SPEC section 6) and ``data``
    (``DATA n`` + n bytes + CRLF); replies may start with ``#tag ``.
    """
    found = []
    position = 0
    while position < len(output):
        end = output.find(b"\r\n", position)
        assert end >= 0, f"unterminated line at {position}: {output[position : position + 80]!r}"
        line = output[position:end]
        position = end + 2
        assert b"\n" not in line and b"\r" not in line, f"line break inside a line: {line!r}"
        if line.startswith(b"* "):
            found.append(("event", line))
            continue
        tag = _TAG.match(line)
        body = line[tag.end() :] if tag else line
        if body == b"OK" or body.startswith(b"OK "):
            found.append(("ok", line))
        elif body.startswith(b"ERR "):
            code, space, _ = body[4:].partition(b" ")
            assert space and code.decode() in SPEC_ERROR_CODES, f"bad ERR line: {line!r}"
            assert code != b"internal", f"a server bug: {line!r}"
            found.append(("err", line))
        else:
            data = _DATA.match(body)
            assert data, f"not a reply or event: {line!r}"
            size = int(data.group(1))
            assert output[position + size : position + size + 2] == b"\r\n", f"DATA {size} payload not ended by CRLF"
            position += size + 2
            found.append(("data", line))
    return found


@provider(ILogObserver)
class FailureCatcher:
    """Collects failures logged while it is installed (``log.failure``: a bug the server caught)."""

    def __init__(self) -> None:
        self.failures: list[Failure] = []

    def __call__(self, event: LogEvent) -> None:
        if "log_failure" in event:
            self.failures.append(event["log_failure"])


@contextmanager
def no_logged_failures() -> Iterator[None]:
    """Fail the example (so Hypothesis shrinks it) if the server logged a failure meanwhile."""
    catcher = FailureCatcher()
    globalLogPublisher.addObserver(catcher)
    try:
        yield
    finally:
        globalLogPublisher.removeObserver(catcher)
    assert not catcher.failures, f"logged: {catcher.failures[0].getTraceback()}"


def connect(factory: ConnectionFactory, port: int) -> tuple[Connection, StringTransport]:
    """A client connection from 127.0.0.1:port over an in-memory transport."""
    address = IPv4Address("TCP", "127.0.0.1", port)
    transport = StringTransport(peerAddress=address)
    protocol = factory.buildProtocol(address)
    protocol.makeConnection(transport)
    return protocol, transport


def feed(protocol: Connection, transport: StringTransport, chunks: list[bytes]) -> None:
    """Deliver the chunks as a TCP transport would: nothing once the server is closing the connection."""
    for chunk in chunks:
        if transport.disconnecting:
            break
        protocol.dataReceived(chunk)


def cut(stream: bytes, points: list[int]) -> list[bytes]:
    """The stream split at the given offsets."""
    edges = [0, *sorted(set(points)), len(stream)]
    return [stream[start:end] for start, end in pairwise(edges)]


@cache
def whole() -> bytes:
    """What the server sends for FIXED sent in one piece."""
    return tcp_output([FIXED])


def tcp_output(chunks: list[bytes]) -> bytes:
    """What a fresh server sends one connection that sends ``chunks``."""
    broker = new_broker()
    protocol, transport = connect(ConnectionFactory(broker, TABLE, broker.clock), 40000)
    feed(protocol, transport, chunks)
    settle(broker)
    protocol.connectionLost(Failure(ConnectionDone()))
    return transport.value()


class ParseRequestProperties(SynchronousTestCase):
    """parse_request on any bytes."""

    @SETTINGS
    @given(st.one_of(st.binary(max_size=300), LINES, st.builds(bytes.__add__, LINES, MARKERS)))
    def test_any_line(self, line: bytes) -> None:
        """Never raises; None exactly for a blank line (only spaces); a sane request otherwise."""
        request = parse_request(line)
        if not line.strip(b" "):
            self.assertIsNone(request)
            return
        self.assertIsNotNone(request)
        self.assertNotIn(" ", request.verb)
        self.assertEqual(request.verb, request.verb.upper())
        self.assertTrue(request.literal_size is None or request.literal_size >= 0)
        self.assertTrue(request.tag is None or _TAG.match(b"#" + request.tag + b" "))
        self.assertFalse(request.tag is not None and request.bad_tag)


class TcpProperties(SynchronousTestCase):
    """The TCP front end fed any bytes, cut anywhere."""

    @SETTINGS
    @given(STREAMS, st.data())
    def test_any_input(self, stream: bytes, data: st.DataObject) -> None:
        """A greeting, then only well-formed replies and events; afterwards the server still answers others."""
        points = data.draw(st.lists(st.integers(0, len(stream)), max_size=8), label="cuts")
        with no_logged_failures():
            broker = new_broker()
            factory = ConnectionFactory(broker, TABLE, broker.clock)
            protocol, transport = connect(factory, 40000)
            feed(protocol, transport, cut(stream, points))
            settle(broker)
            found = items(transport.value())
            self.assertTrue(found and found[0][0] == "ok" and found[0][1].startswith(b"OK msgsvc "), found[:1])
            replies = [kind for kind, _ in found[1:] if kind != "event"]
            self.assertLessEqual(len(replies), stream.count(b"\n") + 1)
            other, other_transport = connect(factory, 40001)
            other.dataReceived(b"PING\n")
            settle(broker)
            self.assertTrue(other_transport.value().endswith(b"\r\nOK PONG\r\n"), other_transport.value())
            other.connectionLost(Failure(ConnectionDone()))
            protocol.connectionLost(Failure(ConnectionDone()))

    @SETTINGS
    @given(st.lists(st.integers(0, len(FIXED)), max_size=12))
    def test_cutting_changes_nothing(self, points: list[int]) -> None:
        """A valid session cut anywhere gets exactly the bytes it gets when sent whole."""
        with no_logged_failures():
            self.assertEqual(tcp_output(cut(FIXED, points)), whole())

    def test_fixed_session_is_well_formed(self) -> None:
        """The fixed session's own replies are well-formed and complete (it ends with QUIT's OK bye)."""
        found = items(whole())
        self.assertEqual(len([kind for kind, _ in found if kind != "event"]), 1 + 19)
        self.assertEqual(found[-1], ("ok", b"OK bye"))


class UdpProperties(SynchronousTestCase):
    """The UDP front end given any datagrams."""

    def check(self, udp: UdpHarness, sent: dict[tuple, int], replies: dict[tuple, int]) -> None:
        """Every datagram sent is one well-formed reply or event; no address got more replies than it sent datagrams."""
        settle(udp.broker)
        for datagram, address in udp.transport.sent:
            (item,) = items(datagram)
            if item[0] != "event":
                replies[address] = replies.get(address, 0) + 1
        for address, count in replies.items():
            self.assertLessEqual(count, sent.get(address, 0), address)
        udp.transport.sent.clear()

    def still_answers(self, udp: UdpHarness, addresses: list[tuple]) -> None:
        """PING from each address, and from a new one, gets OK PONG."""
        for address in [*addresses, ("127.0.0.1", 59999)]:
            udp.send(b"PING", address)
            self.assertIn(b"OK PONG\r\n", udp.datagrams(address), address)

    @SETTINGS
    @given(st.one_of(STREAMS, st.binary(max_size=300)))
    def test_any_datagram(self, datagram: bytes) -> None:
        """One datagram gets at most one well-formed reply datagram; the server answers PING afterwards."""
        address = ("127.0.0.1", 50000)
        with no_logged_failures():
            udp = UdpHarness(new_broker())
            udp.send(datagram, address)
            self.check(udp, {address: 1}, {})
            self.still_answers(udp, [address])
            udp.protocol.stopProtocol()

    @SETTINGS
    @given(st.lists(st.tuples(st.integers(0, 2), st.one_of(STREAMS, st.binary(max_size=40))), max_size=12))
    def test_any_datagrams(self, exchanges: list[tuple[int, bytes]]) -> None:
        """Datagrams from several addresses: replies and events well-formed, never more replies than requests."""
        addresses = [("127.0.0.1", 50000 + n) for n in range(3)]
        sent: dict[tuple, int] = {}
        replies: dict[tuple, int] = {}
        with no_logged_failures():
            udp = UdpHarness(new_broker())
            for index, datagram in exchanges:
                address = addresses[index]
                udp.send(datagram, address)
                sent[address] = sent.get(address, 0) + 1
                self.check(udp, sent, replies)
            self.still_answers(udp, addresses)
            udp.protocol.stopProtocol()
