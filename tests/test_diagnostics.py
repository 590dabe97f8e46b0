"""Diagnostics: ECHO, GEN with flow control, STREAM/STOP on a Clock, and their limits."""

from __future__ import annotations

from twisted.internet.task import Clock, LoopingCall
from twisted.python import usage
from twisted.trial.unittest import TestCase

from msgsvc.dispatch.verbs import diagnostics as diagnostics_verbs
from msgsvc.domain import diagnostics
from msgsvc.tap import Options
from msgsvc.transports.tcp import CHUNK
from msgsvc.transports.udp import MAX_DATAGRAM
from tests.helpers import TcpHarness, UdpHarness, make_broker

START = 1_700_000_000.0
"""The Clock's time when a test starts, so unix-ms timestamps look real."""


def reference(offset: int, size: int) -> bytes:
    """The GEN pattern computed the obvious way: byte i is chr(33 + i % 94)."""
    return bytes(33 + i % 94 for i in range(offset, offset + size))


class CountingSource(diagnostics.PatternSource):
    """A PatternSource that records how much it generated and whether it was closed."""

    made: list[CountingSource] = []

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.generated = 0
        self.closed = False
        CountingSource.made.append(self)

    def read(self, size: int) -> bytes:
        data = super().read(size)
        self.generated += len(data)
        return data

    def close(self) -> None:
        self.closed = True
        super().close()


def fill_on_write(testcase: TestCase, client: TcpHarness) -> None:
    """Make the client's socket buffer full after every write, until the next resumeProducing."""
    write = client.transport.write

    def write_then_fill(data: bytes) -> None:
        write(data)
        client.protocol.pauseProducing()

    testcase.patch(client.transport, "write", write_then_fill)


def stream_calls(clock: Clock) -> list:
    """The delayed calls of running STREAM loops (not idle timeouts)."""
    return [call for call in clock.getDelayedCalls() if isinstance(call.func, LoopingCall)]


class EchoTests(TestCase):
    """ECHO sends the text's bytes back exactly."""

    def setUp(self) -> None:
        self.client = TcpHarness(make_broker())
        self.client.output()

    def test_verbatim(self) -> None:
        """Spaces after the single separating space are kept."""
        self.client.send(b"ECHO  a \n")
        self.assertEqual(self.client.output(), b"DATA 3 echo\r\n a \r\n")

    def test_empty(self) -> None:
        """ECHO without text echoes 0 bytes."""
        self.client.send(b"ECHO\n")
        self.assertEqual(self.client.output(), b"DATA 0 echo\r\n\r\n")

    def test_binary_literal(self) -> None:
        """A literal comes back byte for byte, line breaks and NULs included."""
        payload = bytes(range(256)) + b"\r\n\n"
        self.client.send(b"ECHO {%d}\r\n" % len(payload) + payload + b"\r\n")
        self.assertEqual(self.client.output(), b"DATA 259 echo\r\n" + payload + b"\r\n")


class PatternTests(TestCase):
    """The GEN pattern, computed at any offset."""

    def test_matches_reference(self) -> None:
        """pattern(offset, size) is byte i = chr(33 + i % 94), across the precomputed block's end."""
        block = len(diagnostics._BLOCK)
        for offset, size in [(0, 0), (0, 200), (93, 3), (12345, 1000), (block - 5, 10), (7, 3 * block + 11)]:
            self.assertEqual(diagnostics.pattern(offset, size), reference(offset, size), (offset, size))

    def test_source_reads_in_sequence(self) -> None:
        """A PatternSource continues where the last read stopped and ends after n bytes."""
        source = diagnostics.PatternSource(1000)
        parts = [source.read(300), source.read(300), source.read(600), source.read(10)]
        self.assertEqual([len(p) for p in parts], [300, 300, 400, 0])
        self.assertEqual(b"".join(parts), reference(0, 1000))

    def test_close_ends_source(self) -> None:
        """After close, a source produces nothing more."""
        source = diagnostics.PatternSource(1000)
        source.read(10)
        source.close()
        self.assertEqual(source.read(10), b"")


class GenTests(TestCase):
    """GEN n over TCP: the pattern, produced only as fast as the client reads it."""

    def setUp(self) -> None:
        CountingSource.made = []
        self.patch(diagnostics_verbs, "PatternSource", CountingSource)
        self.broker = make_broker(max_gen=5_000_000)
        self.client = TcpHarness(self.broker)
        self.client.output()

    def test_pattern(self) -> None:
        """GEN 200 sends DATA 200 gen and the pattern."""
        self.client.send(b"GEN 200\n")
        self.assertEqual(self.client.output(), b"DATA 200 gen\r\n" + reference(0, 200) + b"\r\n")
        self.assertTrue(CountingSource.made[0].closed)

    def test_zero(self) -> None:
        """GEN 0 sends an empty payload."""
        self.client.send(b"GEN 0\n")
        self.assertEqual(self.client.output(), b"DATA 0 gen\r\n\r\n")

    def test_limit(self) -> None:
        """GEN over --max-gen is ERR too-big; exactly --max-gen is served."""
        self.assertEqual(self.client.command(b"GEN 5000001").code, "too-big")
        self.assertEqual(CountingSource.made, [])
        self.client.send(b"GEN 5000000\n")
        self.assertEqual(len(self.client.output()), len(b"DATA 5000000 gen\r\n") + 5_000_000 + 2)

    def test_bad_n(self) -> None:
        """n must be a whole number of bytes."""
        for line in (b"GEN", b"GEN -1", b"GEN 1.5", b"GEN ten", b"GEN 1 2", b"GEN " + b"9" * 19):
            self.assertEqual(self.client.command(line).code, "bad-args", line)

    def test_paused_consumer_pauses_generation(self) -> None:
        """While the client's socket is full nothing is generated; each drain lets one chunk through."""
        fill_on_write(self, self.client)
        self.client.send(b"GEN 1000000\nPING\n")
        self.assertEqual(self.client.output(), b"DATA 1000000 gen\r\n")
        source = CountingSource.made[0]
        self.assertEqual(source.generated, 0)
        received = b""
        for step in range(1, 4):
            self.client.protocol.resumeProducing()
            chunk = self.client.output()
            self.assertEqual(len(chunk), CHUNK)
            received += chunk
            self.assertEqual(source.generated, step * CHUNK)
        self.client.protocol.resumeProducing()
        rest = self.client.output()
        self.assertEqual(rest, reference(3 * CHUNK, 1_000_000 - 3 * CHUNK) + b"\r\n")
        self.assertEqual(received + rest[:-2], reference(0, 1_000_000))
        self.assertTrue(source.closed)
        self.client.protocol.resumeProducing()  # the PING waited until the socket drained
        self.assertEqual(self.client.output(), b"OK PONG\r\n")

    def test_largest_gen_is_never_built(self) -> None:
        """GEN 123456789 to a client that reads nothing generates no more than one chunk."""
        self.broker.config.__dict__["max_gen"] = 123456789  # frozen dataclass: set as the option would
        fill_on_write(self, self.client)
        self.client.send(b"GEN 123456789\n")
        self.assertLessEqual(CountingSource.made[0].generated, CHUNK)
        self.assertLessEqual(len(self.client.output()), CHUNK + 100)

    def test_disconnect_stops_generation(self) -> None:
        """A client that leaves mid-payload stops the generation and its source is closed."""
        fill_on_write(self, self.client)
        self.client.send(b"GEN 1000000\n")
        self.client.disconnect()
        source = CountingSource.made[0]
        self.assertTrue(source.closed)
        self.assertEqual(source.generated, 0)


class UdpDiagnosticsTests(TestCase):
    """ECHO and GEN over UDP answer in one datagram when it fits."""

    def setUp(self) -> None:
        self.broker = make_broker()
        self.udp = UdpHarness(self.broker)

    def test_echo(self) -> None:
        """ECHO is answered in one datagram."""
        self.udp.send(b"ECHO hi there")
        self.assertEqual(self.udp.datagrams(), [b"DATA 8 echo\r\nhi there\r\n"])

    def test_gen(self) -> None:
        """GEN is answered in one datagram when it fits."""
        self.udp.send(b"GEN 65000")
        (datagram,) = self.udp.datagrams()
        self.assertEqual(datagram, b"DATA 65000 gen\r\n" + reference(0, 65000) + b"\r\n")

    def test_too_big(self) -> None:
        """ECHO and GEN replies that do not fit one datagram get ERR too-big."""
        self.assertEqual(self.udp.command(b"GEN %d" % MAX_DATAGRAM).code, "too-big")
        self.assertEqual(self.udp.command(b"GEN 100000000").code, "too-big")
        payload = b"x" * (MAX_DATAGRAM - 10)
        self.assertEqual(self.udp.command(b"ECHO {%d}\n" % len(payload) + payload).code, "too-big")
        self.assertEqual(self.broker.sessions, [])


class StreamTests(TestCase):
    """STREAM sends timed ``* PKT`` events; STOP, a new STREAM or leaving ends them."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(START)
        self.broker = make_broker(self.clock, stream_limit=50)
        self.client = TcpHarness(self.broker)
        self.client.output()

    def after(self, seconds: float) -> bytes:
        self.clock.advance(seconds)
        return self.client.output()

    def pkt(self, seq: int, count: int) -> bytes:
        return b"* PKT %d %d %d\r\n" % (seq, count, round(self.clock.seconds() * 1000))

    def test_timing(self) -> None:
        """count packets, one per interval, the first one interval after the OK, then nothing."""
        self.assertEqual(self.client.command(b"STREAM 250 3").text, "streaming 3 packets every 250 ms")
        self.assertEqual(self.after(0.249), b"")
        self.assertEqual(self.after(0.001), self.pkt(1, 3))
        self.assertEqual(self.after(0.25), self.pkt(2, 3))
        self.assertEqual(self.after(0.25), self.pkt(3, 3))
        self.assertEqual(self.after(10), b"")
        self.assertEqual(stream_calls(self.clock), [])

    def test_timestamp(self) -> None:
        """A packet carries the broker clock's time in unix milliseconds."""
        self.client.command(b"STREAM 1 1")
        self.clock.advance(0.001)
        self.assertEqual(self.client.output(), b"* PKT 1 1 1700000000001\r\n")

    def test_stop(self) -> None:
        """STOP ends the stream and says how many packets it sent."""
        self.client.command(b"STREAM 125 10")
        self.clock.pump([0.125, 0.125, 0.0625])
        self.client.output()
        self.assertEqual(self.client.command(b"STOP").text, "stopped after 2 packets")
        self.assertEqual(self.after(5), b"")
        self.assertEqual(stream_calls(self.clock), [])

    def test_stop_without_stream(self) -> None:
        """STOP without a stream says 0 packets."""
        self.assertEqual(self.client.command(b"STOP").text, "stopped after 0 packets")

    def test_stop_after_finish(self) -> None:
        """STOP after a stream completed reports its packets once, then 0."""
        self.client.command(b"STREAM 10 2")
        self.clock.pump([0.01] * 5)
        self.assertEqual(self.client.command(b"STOP").text, "stopped after 2 packets")
        self.assertEqual(self.client.command(b"STOP").text, "stopped after 0 packets")

    def test_new_stream_replaces(self) -> None:
        """A new STREAM replaces the running one, whose packets stop."""
        self.client.command(b"STREAM 250 10")
        self.clock.pump([0.25, 0.25])
        reply = self.client.command(b"STREAM 125 2")
        self.assertEqual(reply.text, "streaming 2 packets every 125 ms (replaced a stream after 2 packets)")
        self.assertEqual(self.after(0.125), self.pkt(1, 2))
        self.assertEqual(self.after(0.125), self.pkt(2, 2))
        self.assertEqual(self.after(1), b"")

    def test_new_stream_after_finished_one(self) -> None:
        """A STREAM after the previous one finished replaces nothing."""
        self.client.command(b"STREAM 125 1")
        self.clock.advance(0.125)
        self.assertEqual(self.client.command(b"STREAM 125 1").text, "streaming 1 packets every 125 ms")
        self.assertEqual(self.after(0.125), self.pkt(1, 1))

    def test_one_stream_per_client(self) -> None:
        """Each client has its own stream; STOP ends only the caller's."""
        other = TcpHarness(self.broker, port=40001)
        other.output()
        self.client.command(b"STREAM 100 5")
        other.command(b"STREAM 100 5")
        self.client.command(b"STOP")
        self.clock.advance(0.1)
        self.assertEqual(self.client.output(), b"")
        self.assertEqual(other.output(), self.pkt(1, 5))

    def test_disconnect_stops(self) -> None:
        """A client that disconnects has its stream stopped."""
        self.client.command(b"STREAM 100 10")
        self.client.disconnect()
        self.assertEqual(stream_calls(self.clock), [])
        self.assertEqual(self.broker.diagnostics._streams, {})

    def test_limits(self) -> None:
        """count above --stream-limit or below 1, and interval outside 1-60000, get ERR bad-args."""
        for line in (b"STREAM 100 51", b"STREAM 100 0", b"STREAM 0 5", b"STREAM 60001 5", b"STREAM 100", b"STREAM"):
            self.assertEqual(self.client.command(line).code, "bad-args", line)
        self.assertEqual(stream_calls(self.clock), [])
        self.assertEqual(self.client.command(b"STREAM 60000 50").text, "streaming 50 packets every 60000 ms")
        self.assertEqual(self.client.command(b"STREAM 1 1").kind, "OK")

    def test_packets_wait_for_payload(self) -> None:
        """Packets due while a GEN payload is being written follow it, never inside it."""
        self.client.command(b"STREAM 10 1")
        fill_on_write(self, self.client)
        self.client.send(b"GEN 100\n")
        self.assertEqual(self.client.output(), b"DATA 100 gen\r\n")
        self.clock.advance(0.01)
        self.client.protocol.resumeProducing()
        self.assertEqual(self.client.output(), reference(0, 100) + b"\r\n" + b"* PKT 1 1 1700000000010\r\n")

    def test_udp(self) -> None:
        """STREAM over UDP opens a session and sends each packet as a datagram; QUIT stops it."""
        udp = UdpHarness(self.broker)
        self.assertEqual(udp.command(b"STREAM 100 5").text, "streaming 5 packets every 100 ms")
        self.assertEqual(len(self.broker.sessions), 2)
        self.clock.advance(0.1)
        self.assertEqual(udp.datagrams(), [self.pkt(1, 5)])
        self.clock.advance(0.1)
        self.assertEqual(udp.datagrams(), [self.pkt(2, 5)])
        udp.command(b"QUIT")
        self.clock.advance(1)
        self.assertEqual(udp.datagrams(), [])
        self.assertEqual(self.broker.diagnostics._streams, {})

    def test_udp_refused_stream_opens_no_session(self) -> None:
        """A refused STREAM over UDP leaves no session behind."""
        udp = UdpHarness(self.broker)
        self.assertEqual(udp.command(b"STREAM 100 51").code, "bad-args")
        self.assertEqual(len(self.broker.sessions), 1)


class OptionTests(TestCase):
    """--stream-limit and --max-gen."""

    def test_defaults(self) -> None:
        """Without options the limits are 1000 packets and 123456789 bytes."""
        options = Options()
        options.parseOptions([])
        config = options.config()
        self.assertEqual((config.stream_limit, config.max_gen), (1000, 123456789))

    def test_given(self) -> None:
        """The options reach the broker's config."""
        options = Options()
        options.parseOptions(["--stream-limit", "5", "--max-gen", "0"])
        config = options.config()
        self.assertEqual((config.stream_limit, config.max_gen), (5, 0))

    def test_invalid(self) -> None:
        """A stream limit below 1 or a negative GEN limit is a usage error."""
        for argv in (["--stream-limit", "0"], ["--max-gen", "-1"], ["--max-gen", "lots"]):
            self.assertRaises(usage.UsageError, Options().parseOptions, argv)
