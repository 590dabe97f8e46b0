"""{N} literals over TCP: framing, arrival byte by byte, size limits, and verbs that stream them to a sink."""

from msgsvc.dispatch.commands import CommandSet, Text
from msgsvc.dispatch.table import CommandTable
from msgsvc.dispatch.verbs import general
from msgsvc.protocol.wire import Ok
from tests.helpers import UdpHarness, make_broker
from tests.tcp_helpers import Connected, _Sink


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
