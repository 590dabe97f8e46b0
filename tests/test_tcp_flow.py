"""TCP limits and flow control: long lines, the client cap, idle clients, streamed bodies, backpressure."""

from msgsvc.dispatch.commands import CommandSet
from msgsvc.dispatch.table import CommandTable
from msgsvc.dispatch.verbs import general, queue
from msgsvc.domain.events import Chat
from msgsvc.protocol.wire import StreamedData
from msgsvc.transports.tcp import CHUNK, GREETING, MAX_EVENT_BACKLOG
from tests.tcp_helpers import Connected


class LimitTests(Connected):
    """Over-long lines, the client cap, idle clients."""

    settings = {"max_line": 20}

    def test_line_too_long_closes(self):
        """A line over --max-line gets ERR line-too-long, then the connection closes."""
        c = self.client()
        c.send(b"SEND " + b"x" * 16 + b"\nPING\n")
        self.assertEqual(c.output(), b"ERR line-too-long command lines are limited to 20 bytes\r\n")
        self.assertTrue(c.transport.disconnecting)

    def test_endless_line_closes(self):
        """A line that never ends is cut off once it passes the limit."""
        c = self.client()
        c.send(b"x" * 100)
        self.assertEqual(c.replies()[0].code, "line-too-long")
        self.assertTrue(c.transport.disconnecting)

    def test_line_at_limit_with_crlf(self):
        """A line of exactly --max-line bytes is accepted, with CRLF or LF."""
        c = self.client()
        self.assertEqual(c.command(b"SEND " + b"x" * 15 + b"\r").text, "1 queued 15 bytes")

    def test_fourth_client_refused(self):
        """With the default cap of 3, a 4th client gets the original's text and is closed."""
        clients = [self.client() for _ in range(3)]
        fourth = self.connect()
        self.assertEqual(fourth.output(), b"ERR full Server is full, try again later.\r\n")
        self.assertTrue(fourth.transport.disconnecting)
        fourth.send(b"SEND sneaky\n")
        fourth.disconnect()
        self.assertEqual(self.broker.queues.depths(), [])
        clients[0].disconnect()
        self.assertEqual(self.connect().output(), GREETING)

    def test_idle_timeout(self):
        """An idle connection gets * BYE idle-timeout and is closed."""
        c = self.client()
        self.clock.advance(599)
        c.command(b"PING")
        self.clock.advance(599)
        self.assertFalse(c.transport.disconnecting)
        self.clock.advance(1)
        self.assertEqual(c.output(), b"* BYE idle-timeout\r\n")
        self.assertTrue(c.transport.disconnecting)

    def test_trickling_bytes_do_not_keep_the_slot(self):
        """Bytes that never complete a command do not reset the idle timer."""
        c = self.client()
        for _ in range(10):
            c.send(b"P")
            self.clock.advance(60)
        self.assertTrue(c.transport.disconnecting)

    def test_not_idle_while_waiting(self):
        """A client waiting for a RECV reply is not idle."""
        c = self.client()
        c.send(b"RECV 3600\n")
        self.clock.advance(1200)
        self.assertFalse(c.transport.disconnecting)

    def test_shutdown_says_bye(self):
        """On shutdown every connection gets * BYE shutdown and is closed."""
        c = self.client()
        self.broker.shutdown()
        self.assertEqual(c.output(), b"* BYE shutdown\r\n")
        self.assertTrue(c.transport.disconnecting)


class _Source:
    """A streamed body of b'z' bytes whose first read fills the socket (pauses the connection)."""

    def __init__(self, size: int, connection) -> None:
        self.left = size
        self.connection = connection
        self.reads = 0
        self.closed = False

    def read(self, size: int) -> bytes:
        self.reads += 1
        if self.reads == 1:
            self.connection.pauseProducing()
        size = min(size, self.left)
        self.left -= size
        return b"z" * size

    def close(self) -> None:
        self.closed = True


class FlowControlTests(Connected):
    """Streamed payloads and events under a full socket."""

    def setUp(self):
        super().setUp()
        self.sources = []
        extra = CommandSet()

        @extra.verb("BIG", summary="a large streamed payload")
        def big(broker, session):
            self.sources.append(_Source(1 << 20, session.client))
            return StreamedData(1 << 20, "big", self.sources[-1])

        self.table = CommandTable([general.commands, queue.commands, extra])
        self.c = self.connect(self.table)
        self.c.output()

    def test_paused_transport_pauses_body(self):
        """A client that stops reading stops the body; resuming finishes it, then later replies follow."""
        self.c.send(b"BIG\nPING\n")
        self.assertEqual(self.c.output(), b"DATA 1048576 big\r\n" + b"z" * CHUNK)
        self.assertEqual(self.sources[0].reads, 1)
        self.c.protocol.resumeProducing()
        output = self.c.output()
        self.assertEqual(output, b"z" * ((1 << 20) - CHUNK) + b"\r\nOK PONG\r\n")
        self.assertTrue(self.sources[0].closed)

    def test_events_wait_for_body(self):
        """An event never lands inside a DATA payload."""
        self.c.send(b"BIG\n")
        self.c.protocol.send_event(Chat("bob", "hi"))
        self.assertNotIn(b"CHAT", self.c.output())
        self.c.protocol.resumeProducing()
        self.assertTrue(self.c.output().endswith(b"z\r\n* CHAT bob hi\r\n"))

    def test_failing_source_drops_the_connection(self) -> None:
        """A body source that fails mid-payload (no reply can go inside it): logged, the connection dropped."""
        self.c.send(b"BIG\n")
        source = self.sources[0]

        def failing_read(size: int) -> bytes:
            raise ZeroDivisionError("disk gone")

        source.read = failing_read
        self.c.protocol.resumeProducing()
        self.assertTrue(self.c.transport.disconnected)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.c.disconnect()
        self.assertTrue(source.closed)

    def test_disconnect_mid_body_closes_source(self):
        """A client leaving mid-payload releases the source."""
        self.c.send(b"BIG\n")
        self.c.disconnect()
        self.assertTrue(self.sources[0].closed)


class BackpressureTests(Connected):
    """Clients that do not read."""

    def test_slow_event_reader_dropped(self):
        """A client that reads no events for too long is disconnected, bounding server memory."""
        c = self.client()
        c.protocol.pauseProducing()
        chat = Chat("x", "y" * 1000)
        for _ in range(MAX_EVENT_BACKLOG // 1000 + 1):
            c.protocol.send_event(chat)
        self.assertTrue(c.transport.disconnected)

    def test_quit_after_pending(self):
        """QUIT closes only after earlier replies are written."""
        a, b = self.client(), self.client()
        a.send(b"RECV 5\nQUIT\n")
        self.assertFalse(a.transport.disconnecting)
        b.command(b"SEND x")
        self.assertEqual([r.kind for r in a.replies()], ["DATA", "OK"])
        self.assertTrue(a.transport.disconnecting)

    def test_nothing_runs_after_quit(self):
        """Commands sent after QUIT are not run, even while QUIT's reply waits behind an earlier one."""
        a = self.client()
        a.send(b"RECV 5\nQUIT\nSEND after\n")
        self.clock.advance(5)
        self.assertEqual([r.kind for r in a.replies()], ["ERR", "OK"])
        self.assertEqual(self.broker.queues.depths(), [])
