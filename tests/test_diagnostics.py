"""Diagnostics: ECHO, the GEN pattern, GEN with flow control, both over UDP, and the diagnostics options."""

from __future__ import annotations

from twisted.python import usage
from twisted.trial.unittest import TestCase

from msgsvc.dispatch.verbs import diagnostics as diagnostics_verbs
from msgsvc.domain import diagnostics
from msgsvc.tap import Options
from msgsvc.transports.tcp import CHUNK
from msgsvc.transports.udp import MAX_DATAGRAM
from tests.diagnostics_helpers import fill_on_write, reference
from tests.helpers import TcpHarness, UdpHarness, make_broker


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
