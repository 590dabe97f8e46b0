"""Tests for the TCP front end over an in-memory transport."""

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from msgsvc.dispatch.commands import CommandSet, Text
from msgsvc.dispatch.table import CommandTable
from msgsvc.dispatch.verbs import build_table, general, queue
from msgsvc.domain.events import Chat
from msgsvc.protocol.wire import Ok, Request, StreamedData
from msgsvc.transports import tcp as tcp_module
from msgsvc.transports.tcp import CHUNK, GREETING, MAX_EVENT_BACKLOG, MAX_PENDING_REPLIES
from tests.helpers import TcpHarness, UdpHarness, make_broker


class Connected(SynchronousTestCase):
    """A broker with a Clock and a way to open TCP connections to it."""

    settings: dict = {}

    def setUp(self):
        self.broker = make_broker(**self.settings)
        self.clock = self.broker.clock
        self.ports = iter(range(40000, 50000))

    def connect(self, table=None) -> TcpHarness:
        return TcpHarness(self.broker, next(self.ports), table)

    def client(self) -> TcpHarness:
        """A connection whose greeting has been read."""
        harness = self.connect()
        self.assertEqual(harness.output(), GREETING)
        return harness


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


class LiteralTests(Connected):
    """{N} literals."""

    def test_binary_literal(self):
        """A literal carries any bytes exactly, CR, LF and NUL included."""
        payload = bytes(range(256)) + b"\r\n\r\n\n\x00"
        c = self.client()
        c.send(b"SEND {%d}\r\n" % len(payload) + payload + b"\r\nRECV\n")
        sent, received = c.replies()
        self.assertEqual(sent.text, f"1 queued {len(payload)} bytes")
        self.assertEqual(received.payload, payload)

    def test_literal_byte_by_byte(self):
        """A literal and its line may arrive one byte at a time."""
        c = self.client()
        for byte in b"#t SEND @q {5}\r\nab\ncd\r\nRECV @q\n":
            c.send(bytes([byte]))
        self.assertEqual(c.output(), b"#t OK 1 queued 5 bytes\r\nDATA 5 1\r\nab\ncd\r\n")

    def test_newline_after_literal_optional(self):
        """The line ending after a literal is optional; LF alone also works."""
        c = self.client()
        c.send(b"SEND {2}\nabPING\nSEND {2}\ncd\nPING\n")
        self.assertEqual([r.text for r in c.replies()], ["1 queued 2 bytes", "PONG", "2 queued 2 bytes", "PONG"])

    def test_cr_after_literal_then_more(self):
        """A CR after a literal that is not followed by LF is left for the next line."""
        c = self.client()
        c.send(b"SEND {1}\nx\r")
        c.send(b"PING\n")
        self.assertEqual([r.kind for r in c.replies()], ["OK", "ERR"])

    def test_empty_literal(self):
        """A {0} literal is an empty argument, handled at once."""
        c = self.client()
        c.send(b"SEND {0}\n")
        self.assertEqual(c.output(), b"OK 1 queued 0 bytes\r\n")

    def test_literal_for_unknown_verb_is_consumed(self):
        """A literal after an unknown verb is skipped, so the stream stays in step."""
        c = self.client()
        c.send(b"NOPE {6}\nPING\n\nPING\n")
        self.assertEqual([r.kind for r in c.replies()], ["ERR", "OK"])

    def test_oversized_literal_closes(self):
        """A literal over --max-message gets ERR too-big, then the connection closes; nothing is stored."""
        self.broker = make_broker(max_message=10)
        c = self.client()
        c.send(b"SEND {11}\n01234567890\nPING\n")
        self.assertEqual(c.output(), b"ERR too-big literal of 11 bytes exceeds the 10-byte limit\r\n")
        self.assertTrue(c.transport.disconnecting)
        self.assertEqual(self.broker.queues.depths(), [])

    def test_vanish_mid_literal(self):
        """A client that disconnects in the middle of a literal stores nothing and frees its slot."""
        c = self.client()
        c.send(b"SEND {100}\nonly part of it")
        c.disconnect()
        self.assertEqual(self.broker.queues.depths(), [])
        self.assertEqual(self.broker.sessions, [])


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


class _Sink:
    """A literal sink recording what it is given."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def finish(self) -> str:
        return f"{sum(map(len, self.parts))} bytes in {len(self.parts)} parts"

    def abort(self) -> None:
        self.aborted = True


class LiteralSinkTests(Connected):
    """Verbs that stream their literal to a sink instead of memory."""

    def setUp(self):
        super().setUp()
        self.sinks = []
        extra = CommandSet()

        def new_sink(broker, session):
            self.sinks.append(_Sink())
            return self.sinks[-1]

        @extra.verb("PUT", Text("data"), summary="stream data to a sink", literal_sink=new_sink)
        def put(broker, session, data):
            return Ok(data)

        self.table = CommandTable([general.commands, extra])
        self.c = self.connect(self.table)
        self.c.output()

    def test_literal_streams_to_sink(self):
        """Each piece of the literal goes to the sink as it arrives; the handler gets the sink's result."""
        self.c.send(b"PUT {6}\nabc")
        self.c.send(b"def\n")
        self.assertEqual(self.c.output(), b"OK 6 bytes in 2 parts\r\n")
        self.assertEqual(self.sinks[0].parts, [b"abc", b"def"])

    def test_vanish_aborts_sink(self):
        """A client leaving mid-literal aborts the sink."""
        self.c.send(b"PUT {6}\nabc")
        self.c.disconnect()
        self.assertTrue(self.sinks[0].aborted)

    def test_udp_literal_uses_sink(self):
        """Over UDP the literal goes through the same sink."""
        udp = UdpHarness(self.broker, self.table)
        self.assertEqual(udp.command(b"PUT {3}\nxyz").text, "3 bytes in 1 parts")


class _Unencodable(Ok):
    """A reply whose encoding fails: a bug in the reply path."""

    def encode(self, tag: bytes | None = None) -> bytes:
        raise ZeroDivisionError("cannot encode")


class SafetyNetTests(Connected):
    """An unexpected exception in framing becomes ERR internal and a clean close, never a dropped connection."""

    def setUp(self) -> None:
        super().setUp()
        parse = tcp_module.parse_request

        def exploding_parse(line: bytes) -> Request | None:
            if line == b"BOOM":
                raise ZeroDivisionError("a framing bug")
            return parse(line)

        self.patch(tcp_module, "parse_request", exploding_parse)

    def test_exception_becomes_err_internal(self) -> None:
        """Replies before the failure are delivered, then ERR internal, then the connection closes."""
        c = self.client()
        c.send(b"PING\nBOOM\nPING\n")
        self.assertEqual(c.output(), b"OK PONG\r\nERR internal internal error; it has been logged\r\n")
        self.assertTrue(c.transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_err_internal_waits_for_earlier_replies(self) -> None:
        """ERR internal takes its place behind a reply still being waited for."""
        c = self.client()
        c.send(b"RECV 5\nBOOM\n")
        self.assertEqual(c.output(), b"")
        self.assertFalse(c.transport.disconnecting)
        self.clock.advance(5)
        self.assertEqual([r.code for r in c.replies()], ["empty", "internal"])
        self.assertTrue(c.transport.disconnecting)
        self.flushLoggedErrors(ZeroDivisionError)

    def test_logged_once(self) -> None:
        """More input after the failure is ignored: one traceback, one reply."""
        c = self.client()
        c.send(b"BOOM\n")
        c.send(b"BOOM\nPING\n" * 100)
        self.assertEqual([r.code for r in c.replies()], ["internal"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_exception_in_literal_sink(self) -> None:
        """A sink that fails mid-literal: ERR internal, the sink is aborted, the connection closes."""
        sinks = []

        class FailingSink(_Sink):
            def write(self, data: bytes) -> None:
                raise ZeroDivisionError("disk on fire")

        def new_sink(broker, session) -> FailingSink:
            sinks.append(FailingSink())
            return sinks[-1]

        extra = CommandSet()

        @extra.verb("PUT", Text("data"), summary="stream data to a sink", literal_sink=new_sink)
        def put(broker, session, data: str) -> Ok:
            return Ok(data)

        c = self.connect(CommandTable([general.commands, extra]))
        c.output()
        c.send(b"PUT {6}\nabc")
        self.assertEqual([r.code for r in c.replies()], ["internal"])
        self.assertTrue(sinks[0].aborted)
        self.assertTrue(c.transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_exception_in_deferred_reply(self) -> None:
        """A reply that fails to encode when its Deferred fires becomes ERR internal too."""
        pending = Deferred()
        extra = CommandSet()

        @extra.verb("LATER", summary="a reply that comes later")
        def later(broker, session) -> Deferred:
            return pending

        c = self.connect(CommandTable([general.commands, extra]))
        c.output()
        c.send(b"LATER\n")
        pending.callback(_Unencodable("x"))
        self.assertEqual([r.code for r in c.replies()], ["internal"])
        self.assertTrue(c.transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_huge_literal_marker_digits(self) -> None:
        """A literal marker of 5000 digits gets exactly one ERR (too-big, or internal at worst) and a close."""
        c = self.client()
        c.send(b"SEND {" + b"9" * 5000 + b"}\nPING\n")
        (reply,) = c.replies()
        self.assertIn(reply.code, ("too-big", "internal"))
        self.assertTrue(c.transport.disconnecting)
        self.flushLoggedErrors(ValueError)


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
