"""Resources a client holds are bounded and released: hostile or careless clients cannot grow the server."""

from twisted.trial.unittest import SynchronousTestCase

from msgsvc.dispatch.pipeline import MAX_EVENT_BACKLOG
from msgsvc.domain.queues import MAX_SESSIONLESS_WAITERS
from tests.helpers import TcpHarness, UdpHarness, make_broker


class ReleaseTests(SynchronousTestCase):
    """What a departed or expired client leaves behind."""

    def test_expired_waiters_leave_the_line(self):
        """RECV waits that expire on a thousand queue names leave no trace."""
        broker = make_broker()
        tcp = TcpHarness(broker)
        for i in range(1000):
            tcp.send(b"RECV @q%d 0.01\n" % i)
            broker.clock.advance(0.02)
        self.assertEqual((broker.queues.receivers.lines, broker.queues.receivers.of_session), ({}, {}))

    def test_departed_waiters_leave_the_line(self):
        """A client that leaves while waiting is answered and forgotten."""
        broker = make_broker(max_clients=0)
        tcp = TcpHarness(broker)
        tcp.send(b"RECV @q 60\n")
        tcp.disconnect()
        self.assertEqual((broker.queues.receivers.lines, broker.queues.receivers.of_session), ({}, {}))
        self.assertEqual(broker.clock.getDelayedCalls(), [])

    def test_gone_clients_keep_no_buffers(self):
        """STATUS history does not keep a departed connection (or its half-read literal) alive."""
        broker = make_broker(max_clients=0)
        for n in range(3):
            tcp = TcpHarness(broker, port=5000 + n)
            tcp.send(b"SEND {1000000}\n" + b"x" * 999_000)
            tcp.disconnect()
        self.assertTrue(all(session.client.transport_name == "gone" for session in broker.clients_of_run))
        self.assertEqual([s.transport_name for s in broker.clients_of_run], ["tcp"] * 3)

    def test_refused_literal_not_buffered(self):
        """A literal for a command that will be refused anyway (bad tag, unknown verb) is skipped, not stored."""
        broker = make_broker()
        tcp = TcpHarness(broker)
        tcp.output()
        tcp.send(b"#bad! UPD t f {5000000}\n" + b"x" * 4_000_000)
        self.assertEqual(tcp.protocol._literal_parts, [])
        tcp.send(b"x" * 1_000_000 + b"\nPING\n")
        self.assertEqual([r.code or r.text for r in tcp.replies()], ["bad-args", "PONG"])

    def test_closing_connection_stops_reading(self):
        """After a fatal error queued behind a waiting reply, further bytes are not read."""
        broker = make_broker()
        tcp = TcpHarness(broker)
        tcp.send(b"RECV 3600\nSEND {99999999}\n")
        for _ in range(200):
            tcp.send(b"x" * 65536)
        self.assertEqual(tcp.protocol.replies.pending, 2)
        self.assertEqual(tcp.transport.producerState, "paused")


class BoundTests(SynchronousTestCase):
    """Limits on what one client can make the server hold."""

    def test_sessionless_udp_waiters_bounded(self):
        """Waiting RECVs from addresses without a session are capped, then refused with ERR full."""
        broker = make_broker()
        udp = UdpHarness(broker)
        for i in range(MAX_SESSIONLESS_WAITERS + 10):
            udp.send(b"RECV @q 3600", ("127.0.0.9", 1000 + i))
        refused = udp.received(("127.0.0.9", 1000 + MAX_SESSIONLESS_WAITERS))
        self.assertEqual(refused[0].code, "full")
        self.assertEqual(sum(map(len, broker.queues.receivers.of_session.values())), MAX_SESSIONLESS_WAITERS)
        broker.clock.advance(3600)
        self.assertEqual(broker.queues.receivers.sessionless, 0)

    def test_events_held_behind_a_body_are_bounded(self):
        """A client that stops reading in the middle of a GEN is cut off before its held events grow large."""
        broker = make_broker(max_clients=0)
        slow = TcpHarness(broker, port=1)
        slow.send(b"FOLLOW #ALL\n")
        slow.output()
        write = slow.transport.write

        def filling_write(data):
            write(data)
            if len(slow.transport.value()) > 300_000 and not slow.protocol.replies.output_paused:
                slow.protocol.pauseProducing()  # what a real socket does when the client stops reading

        slow.transport.write = filling_write
        slow.send(b"GEN 100000000\n")
        author = TcpHarness(broker, port=2)
        for _ in range(20000):
            author.send(b"TWEET " + b"x" * 140 + b"\n")
        self.assertLessEqual(slow.protocol.replies.held_bytes, MAX_EVENT_BACKLOG)
        self.assertTrue(slow.transport.disconnected)
