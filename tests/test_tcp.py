"""The TCP front end over an in-memory transport: greeting, queue verbs, pipelining, tags, refusal logging."""

from msgsvc.dispatch.verbs import build_table
from msgsvc.transports.tcp import MAX_PENDING_REPLIES
from tests.helpers import TcpHarness, make_broker
from tests.tcp_helpers import Connected


class GreetingAndBasicsTests(Connected):
    """Greeting, PING, QUIT, unknown input."""

    def test_greeting(self):
        """A new connection is greeted with OK msgsvc <version> ready."""
        self.assertRegex(self.connect().output(), rb"^OK msgsvc \d+\.\d+\.\d+ ready")

    def test_ping_any_case_crlf_or_lf(self):
        """PING answers OK PONG whatever the case and line ending."""
        c = self.client()
        c.send(b"ping\nPiNg\r\n")
        self.assertEqual(c.output(), b"OK PONG\r\nOK PONG\r\n")

    def test_half_close_answers_then_closes(self):
        """A client that stops sending (nc -N) still gets every reply, then the server closes."""
        a, b = self.client(), self.client()
        a.send(b"PING\nRECV 5\n")
        a.protocol.readConnectionLost()
        self.assertEqual(a.replies()[0].text, "PONG")
        self.assertFalse(a.transport.disconnecting)
        b.command(b"SEND late")
        self.assertEqual(a.replies()[0].payload, b"late")
        self.assertTrue(a.transport.disconnecting)

    def test_quit_aliases(self):
        """QUIT, EXIT and XIT answer OK bye and close the connection."""
        for verb in (b"QUIT", b"exit", b"Xit"):
            c = self.client()
            c.send(verb + b"\nPING\n")
            self.assertEqual(c.output(), b"OK bye\r\n")
            self.assertTrue(c.transport.disconnecting)

    def test_blank_lines_ignored(self):
        """Blank lines get no reply."""
        c = self.client()
        c.send(b"\n\r\n   \nPING\n")
        self.assertEqual(c.output(), b"OK PONG\r\n")

    def test_unknown_and_binary_garbage(self):
        """Garbage gets ERR unknown-command and the connection keeps working."""
        c = self.client()
        c.send(b"\x00\xff\x80garbage\x1b[2J\nPING\n")
        first, second = c.replies()
        self.assertEqual(first.code, "unknown-command")
        self.assertEqual(second.text, "PONG")
        self.assertFalse(c.transport.disconnecting)

    def test_help(self):
        """HELP lists SEND, RECV, QUEUES, PING, QUIT."""
        payload = self.client().command(b"HELP").payload.decode()
        for verb in ("SEND", "RECV", "QUEUES", "PING", "QUIT", "HELP"):
            self.assertIn(f"\r\n{verb} ", "\r\n" + payload)


class QueueOverTcpTests(Connected):
    """SEND / RECV / QUEUES on the wire."""

    def test_send_recv(self):
        """SEND answers with id and size; RECV returns DATA n id and the exact text."""
        c = self.client()
        self.assertEqual(c.command(b"SEND hello  world ").text, "1 queued 13 bytes")
        reply = c.command(b"RECV")
        self.assertEqual((reply.kind, reply.text, reply.payload), ("DATA", "1", b"hello  world "))

    def test_recv_empty_text(self):
        """RECV on an empty queue gets the original's exact text."""
        reply = self.client().command(b"RECV")
        self.assertEqual((reply.code, reply.text), ("empty", "Error - no messages in queue."))

    def test_zero_byte_message(self):
        """SEND with no text queues a 0-byte message, which RECV returns."""
        c = self.client()
        self.assertEqual(c.command(b"SEND").text, "1 queued 0 bytes")
        self.assertEqual(c.output(), b"")
        c.send(b"RECV\n")
        self.assertEqual(c.output(), b"DATA 0 1\r\n\r\n")

    def test_named_queue_and_queues_listing(self):
        """@queue selects a queue; QUEUES lists non-empty queues with their depth."""
        c = self.client()
        c.send(b"SEND @jobs a\nSEND @jobs b\nSEND c\n")
        c.output()
        self.assertEqual(c.command(b"QUEUES").payload, b"default 1\r\njobs 2\r\n")
        self.assertEqual(c.command(b"RECV @jobs").payload, b"a")

    def test_bad_queue_name_and_wait(self):
        """A bad queue name or wait gets ERR bad-args and stores nothing."""
        c = self.client()
        for line in (b"SEND @ x", b"SEND @a/b x", b"RECV @" + b"q" * 65, b"RECV -1", b"RECV nan", b"RECV 1e9"):
            self.assertEqual(c.command(line).code, "bad-args", line)
        self.assertEqual(c.command(b"QUEUES").payload, b"")

    def test_cross_connection_delivery(self):
        """A message sent on one connection is received on another, once."""
        a, b = self.client(), self.client()
        a.command(b"SEND over there")
        self.assertEqual(b.command(b"RECV").payload, b"over there")
        self.assertEqual(a.command(b"RECV").code, "empty")

    def test_recv_wait(self):
        """RECV with wait-seconds waits for a message from another client."""
        a, b = self.client(), self.client()
        a.send(b"RECV 2.5\n")
        self.assertEqual(a.output(), b"")
        b.command(b"SEND patience")
        self.assertEqual(a.replies()[0].payload, b"patience")

    def test_recv_wait_expires(self):
        """RECV with a wait answers ERR empty when the time is up."""
        a = self.client()
        a.send(b"RECV 0.5\n")
        self.clock.advance(0.5)
        self.assertEqual(a.replies()[0].code, "empty")

    def test_too_big_text_refused_connection_stays(self):
        """A text over --max-message gets ERR too-big, stores nothing, keeps the connection."""
        self.broker = make_broker(max_message=4)
        c = self.client()
        self.assertEqual(c.command(b"SEND 12345").code, "too-big")
        self.assertEqual(c.command(b"SEND 1234").text, "1 queued 4 bytes")
        self.assertEqual(c.command(b"QUEUES").payload, b"default 1\r\n")


class PipeliningAndTagTests(Connected):
    """Many commands at once; tags."""

    def test_replies_in_order(self):
        """Pipelined commands get one reply each, in order, even when an earlier one waits."""
        a, b = self.client(), self.client()
        a.send(b"RECV 5\nPING\nSEND @other mine\nQUEUES\n")
        self.assertEqual(a.output(), b"")
        self.clock.advance(1)
        b.command(b"SEND first")
        kinds = [(r.kind, r.text) for r in a.replies()]
        self.assertEqual(kinds, [("DATA", "2"), ("OK", "PONG"), ("OK", "1 queued 4 bytes"), ("DATA", "queues")])

    def test_tags_echoed(self):
        """A tagged command's reply starts with the same tag."""
        c = self.client()
        c.send(b"#a1 PING\n#Z9 SEND x\n#q RECV\n")
        self.assertEqual(c.output(), b"#a1 OK PONG\r\n#Z9 OK 1 queued 1 bytes\r\n#q DATA 1 1\r\nx\r\n")

    def test_tag_without_command(self):
        """A line holding only a tag gets ERR bad-args, tagged."""
        self.assertEqual(self.client().command(b"#a7").code, "bad-args")

    def test_huge_literal_marker_refused(self):
        """A literal marker of any number of digits is a literal: too big, so refused and closed."""
        c = self.client()
        c.send(b"SEND {99999999999999999999}\nPING\n")
        self.assertEqual(c.replies()[0].code, "too-big")
        self.assertTrue(c.transport.disconnecting)
        self.assertEqual(self.broker.queues.depths(), [])

    def test_bad_tag(self):
        """A malformed tag gets ERR bad-args without a tag and runs nothing."""
        c = self.client()
        c.send(b"#no-good SEND x\n")
        self.assertEqual(c.output(), b"ERR bad-args a tag is # followed by 1-16 letters or digits, then a space\r\n")
        self.assertEqual(c.command(b"QUEUES").payload, b"")

    def test_too_many_pending_pauses_reading(self):
        """A client with too many replies outstanding is not read until they drain."""
        a, b = self.client(), self.client()
        a.send(b"RECV 30\n" * MAX_PENDING_REPLIES)
        self.assertEqual(a.transport.producerState, "paused")
        for _ in range(MAX_PENDING_REPLIES):
            b.command(b"SEND x")
        self.assertEqual(len(a.replies()), MAX_PENDING_REPLIES)
        self.assertEqual(a.transport.producerState, "producing")


class _RecordedRefusals:
    """Stands in for the broker's RefusalLog: records each refusal."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def refused(self, who: str, code: str, text: str) -> None:
        self.calls.append((who, code, text))


class RefusalLoggingTests(Connected):
    """Input refused by the framing is reported to the broker's refusal log (logged under ERROR)."""

    settings = {"max_line": 20, "max_message": 10}

    def setUp(self) -> None:
        super().setUp()
        self.table = build_table()
        self.table.refusals = _RecordedRefusals()

    def connect(self, table=None) -> TcpHarness:
        return super().connect(table or self.table)

    def test_line_too_long(self) -> None:
        """An over-long line is reported with the client's address."""
        self.client().send(b"x" * 30 + b"\n")
        self.assertEqual(
            self.table.refusals.calls,
            [("tcp 127.0.0.1:40000", "line-too-long", "command lines are limited to 20 bytes")],
        )

    def test_literal_too_big(self) -> None:
        """A literal over --max-message is reported."""
        self.client().send(b"SEND {11}\n")
        self.assertEqual(
            self.table.refusals.calls,
            [("tcp 127.0.0.1:40000", "too-big", "literal of 11 bytes exceeds the 10-byte limit")],
        )

    def test_commands_not_reported_here(self) -> None:
        """A well-framed command is not a framing refusal."""
        self.client().send(b"PING\nSEND 0123456789\n")
        self.assertEqual(self.table.refusals.calls, [])
