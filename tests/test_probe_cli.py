"""msgsvc-probe run against a real in-process server, and on a terminal."""

from __future__ import annotations

import socket
import sys

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from tests.helpers import CHECKOUT_ENV, ROOT, make_broker, run_cli, serve_for_test
from tests.test_cli_pty import AT_ONCE, Server, Terminal

MODULE = "msgsvc.cli.probe"
MAX_GEN = 2_000_000


class _Piped(ProcessProtocol):
    """Writes ``data`` to a process's standard input, closes it, and collects what the process prints."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.output = b""
        self.errors = b""
        self.ended: Deferred[tuple[str, str, int]] = Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self.data)
        self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self.output += data

    def errReceived(self, data: bytes) -> None:
        self.errors += data

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback((self.output.decode(), self.errors.decode(), reason.value.exitCode))


class ProbeCliTests(TestCase):
    """msgsvc-probe run as a subprocess against a server on a free loopback port."""

    timeout = 60

    def setUp(self) -> None:
        self.port = serve_for_test(self, make_broker(reactor, max_gen=MAX_GEN))

    async def probe(self, *args: str) -> tuple[str, str, int]:
        """Run the probe against the test server: (stdout, stderr, exit status)."""
        out, err, code = await run_cli(MODULE, "127.0.0.1", str(self.port), *args)
        return out.decode(), err.decode(), code

    async def piped(self, data: bytes, *args: str) -> tuple[str, str, int]:
        """Run the probe's prompt with ``data`` on its standard input."""
        process = _Piped(data)
        argv = [sys.executable, "-m", MODULE, "127.0.0.1", str(self.port), *args]
        reactor.spawnProcess(process, sys.executable, argv, env=CHECKOUT_ENV, path=ROOT)
        return await process.ended

    def assertIntact(self, result: tuple[str, str, int]) -> str:
        """Exit 0 with nothing on standard error; returns the output."""
        out, err, code = result
        self.assertEqual((code, err), (0, ""), out)
        return out

    async def test_echo(self) -> None:
        """echo prints the text that came back and the round-trip time."""
        out = self.assertIntact(await self.probe("echo", "hello", " spaced  world "))
        self.assertRegex(out, r"\Aecho: hello  spaced  world \nround trip: [0-9]+\.[0-9]{2} ms\n\Z")

    async def test_echo_udp(self) -> None:
        """echo works over UDP too."""
        out = self.assertIntact(await self.probe("--udp", "echo", "over udp {2}"))
        self.assertRegex(out, r"\Aecho: over udp \{2\}\nround trip: [0-9.]+ ms\n\Z")

    async def test_gen_tcp(self) -> None:
        """gen 1,000,000 over TCP: bytes, seconds and MiB/s, then the pattern verified."""
        out = self.assertIntact(await self.probe("gen", "1000000"))
        self.assertRegex(out, r"\Areceived 1000000 bytes in [0-9.]+ s \((?:[0-9.]+|inf) MiB/s\)\npattern verified\n\Z")

    async def test_gen_udp(self) -> None:
        """A gen that fits one datagram works over UDP (--udp may follow the check)."""
        out = self.assertIntact(await self.probe("gen", "--udp", "5000"))
        self.assertRegex(out, r"\Areceived 5000 bytes in [0-9.]+ s .*\npattern verified\n\Z")

    async def test_gen_udp_transfer(self) -> None:
        """Over UDP a reply larger than one datagram comes as a reliable transfer, verified."""
        out = self.assertIntact(await self.probe("--udp", "gen", "100000"))
        self.assertRegex(out, r"\Areceived 100000 bytes in .*\npattern verified\n\Z")

    async def test_gen_over_max_gen(self) -> None:
        """A gen over --max-gen is refused: one line on stderr, exit 1."""
        out, err, code = await self.probe("gen", str(MAX_GEN + 1))
        self.assertEqual((out, code), ("", 1))
        self.assertEqual(err, f"msgsvc-probe: server refused: too-big: GEN is limited to {MAX_GEN} bytes (--max-gen)\n")

    async def test_stream_tcp(self) -> None:
        """stream 20 x 10 over TCP: every packet arrives, with the jitter reported."""
        out = self.assertIntact(await self.probe("stream", "20", "10"))
        self.assertIn("streaming 10 packets every 20 ms\n", out)
        self.assertIn("packets: 10/10 received, 0 lost, 0 reordered, 0 duplicates\n", out)
        self.assertRegex(out, r"jitter: [0-9.]+ ms \(mean deviation of the gaps from 20 ms\)\n")
        self.assertIn("server: stopped after 10 packets\n", out)

    async def test_stream_udp(self) -> None:
        """stream 20 x 10 over UDP: the packets arrive as datagrams of a UDP session."""
        out = self.assertIntact(await self.probe("--udp", "stream", "20", "10"))
        self.assertIn("packets: 10/10 received, 0 lost, 0 reordered, 0 duplicates\n", out)
        self.assertIn("server: stopped after 10 packets\n", out)

    async def test_stream_refused(self) -> None:
        """An interval the server does not accept is its bad-args error, exit 1."""
        out, err, code = await self.probe("stream", "0", "3")
        self.assertEqual((out, code), ("", 1))
        self.assertRegex(err, r"\Amsgsvc-probe: server refused: bad-args: interval-ms must be .*\n\Z")

    async def test_prompt_from_pipe(self) -> None:
        """Piped lines: a number is gen, stream takes the next two lines, other text is echoed, quit ends."""
        out = self.assertIntact(await self.piped(b"1000\nstream\n20\n5\n  hello probe\nquit\nnever read\n"))
        self.assertNotIn("probe>", out)
        self.assertRegex(
            out,
            r"\Areceived 1000 bytes in .*\npattern verified\n"
            r"streaming 5 packets every 20 ms\npackets: 5/5 received, 0 lost, 0 reordered, 0 duplicates\n"
            r"jitter: .*\nserver: stopped after 5 packets\n"
            r"echo:   hello probe\nround trip: [0-9.]+ ms\n\Z",
        )

    async def test_prompt_failure_goes_on(self) -> None:
        """In the prompt a refused check is an error line, the prompt goes on, and the exit status is 1."""
        out, err, code = await self.piped(b"%d\nhi\n" % (MAX_GEN + 1), "--udp")
        self.assertEqual((code, err), (1, "msgsvc-probe: 1 of 2 checks failed\n"))
        self.assertRegex(out, r"\Aerror: server refused: too-big: .*\necho: hi\nround trip: [0-9.]+ ms\n\Z")

    async def test_unreachable(self) -> None:
        """A port nobody listens on: one line on stderr, exit 1."""
        closed = socket.socket()
        self.addCleanup(closed.close)
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = closed.getsockname()[1]
        out, err, code = await run_cli(MODULE, "127.0.0.1", str(port), "echo", "x")
        self.assertEqual((out, code), (b"", 1))
        self.assertEqual(err.decode(), f"msgsvc-probe: cannot reach 127.0.0.1:{port} over TCP: connection refused\n")


class ProbeTerminalTests(TestCase):
    """msgsvc-probe on a real terminal (a pty), against a server in a subprocess."""

    def test_prompt_on_terminal(self) -> None:
        """On a terminal the prompt and the stream's questions are shown; Ctrl-D ends with status 0."""
        server = Server(self)
        probe = Terminal(self, MODULE, "127.0.0.1", str(server.port))
        probe.wait_for(b"probe>")
        probe.type(b"50\r")
        probe.wait_for(b"pattern verified")
        probe.type(b"stream\r")
        probe.wait_for(b"interval (ms):")
        probe.type(b"10\r")
        probe.wait_for(b"count:")
        probe.type(b"3\r")
        probe.wait_for(b"server: stopped after 3 packets")
        probe.wait_for(b"probe>", after=b"server: stopped")
        probe.type(b"\x04")
        self.assertEqual(probe.exit_status(AT_ONCE), 0, probe.output)
        self.assertIn(b"packets: 3/3 received, 0 lost", probe.output)

    def test_ctrl_c_during_stream(self) -> None:
        """Ctrl-C while a stream is being collected exits 130 at once, without a traceback."""
        server = Server(self)
        probe = Terminal(self, MODULE, "127.0.0.1", str(server.port), "stream", "1000", "60")
        probe.wait_for(b"streaming 60 packets every 1000 ms")
        probe.type(b"\x03")
        self.assertEqual(probe.exit_status(AT_ONCE), 130, probe.output)
        self.assertNotIn(b"Traceback", probe.output)
