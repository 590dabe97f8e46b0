"""Diagnostics STREAM and STOP on a Clock: timed * PKT events, replacement, limits, UDP sessions."""

from __future__ import annotations

from twisted.internet.task import Clock, LoopingCall
from twisted.trial.unittest import TestCase

from tests.diagnostics_helpers import fill_on_write, reference
from tests.helpers import TcpHarness, UdpHarness, make_broker

START = 1_700_000_000.0
"""The Clock's time when a test starts, so unix-ms timestamps look real."""


def stream_calls(clock: Clock) -> list:
    """The delayed calls of running STREAM loops (not idle timeouts)."""
    return [call for call in clock.getDelayedCalls() if isinstance(call.func, LoopingCall)]


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
