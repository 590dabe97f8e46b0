"""Replies gathered per read: one write for a pipelined burst, the order and flow control unchanged."""

from msgsvc.dispatch.commands import CommandSet
from msgsvc.dispatch.table import CommandTable
from msgsvc.dispatch.verbs import general, queue
from msgsvc.domain.events import Chat
from msgsvc.protocol.wire import StreamedData
from msgsvc.transports.tcp import CHUNK, GATHER_LIMIT
from tests.helpers import TcpHarness, make_broker
from tests.tcp_helpers import Connected


def count_writes(harness: TcpHarness) -> list[bytes]:
    """Record each write the connection makes to its transport from now on."""
    writes: list[bytes] = []
    write = harness.transport.write

    def recording(data: bytes) -> None:
        writes.append(data)
        write(data)

    harness.transport.write = recording  # type: ignore[method-assign]
    return writes


class _Source:
    """A streamed body of ``size`` bytes of ``z``; ``first_read`` is called when it is first read."""

    def __init__(self, size: int, first_read=None) -> None:
        self.left = size
        self.first_read = first_read

    def read(self, size: int) -> bytes:
        if self.first_read is not None:
            self.first_read, first_read = None, self.first_read
            first_read()
        part = min(size, self.left)
        self.left -= part
        return b"z" * part

    def close(self) -> None:
        """Nothing to release."""


class GatherTests(Connected):
    """What one read's commands write, and when."""

    settings = {"max_clients": 10, "max_message": GATHER_LIMIT}

    def test_one_write_per_read(self):
        """Five pipelined commands in one read are answered with one write, in order."""
        c = self.client()
        writes = count_writes(c)
        c.send(b"SEND a\nSEND @q b\r\nRECV\nRECV @q\nPING\n")
        self.assertEqual(len(writes), 1)
        self.assertEqual(
            writes[0],
            b"OK 1 queued 1 bytes\r\nOK 2 queued 1 bytes\r\nDATA 1 1\r\na\r\nDATA 1 2\r\nb\r\nOK PONG\r\n",
        )

    def test_reads_are_written_apart(self):
        """Each read's replies go out at its end, not held for a later read."""
        c = self.client()
        writes = count_writes(c)
        c.send(b"PING\nPI")
        self.assertEqual(writes, [b"OK PONG\r\n"])
        c.send(b"NG\nPING\n")
        self.assertEqual(writes, [b"OK PONG\r\n", b"OK PONG\r\nOK PONG\r\n"])

    def test_waiting_reply_keeps_its_place(self):
        """A waiting RECV holds the replies after it; they go out together, in order, when a SEND wakes it."""
        waiter, sender = self.client(), self.client()
        writes = count_writes(waiter)
        waiter.send(b"PING\nRECV @q 5\nPING\n")
        self.assertEqual(writes, [b"OK PONG\r\n"])
        sender.send(b"SEND @q hi\n")
        self.assertEqual(writes[1:], [b"DATA 2 1\r\nhi\r\nOK PONG\r\n"])
        self.assertEqual(sender.output(), b"OK 1 queued 2 bytes\r\n")

    def test_events_in_read_order(self):
        """An event raised while a read is handled lands between the replies around it."""
        c = self.client()
        writes = count_writes(c)
        c.send(b"PING\n")
        c.protocol.send_event(Chat("bob", "hi"))
        self.assertEqual(writes, [b"OK PONG\r\n", b"* CHAT bob hi\r\n"])

    def test_quit_writes_what_came_before(self):
        """QUIT mid-read: the replies before it and its own go out, then the close; nothing after it runs."""
        c = self.client()
        writes = count_writes(c)
        c.send(b"SEND a\nQUIT\nSEND b\n")
        self.assertEqual(writes, [b"OK 1 queued 1 bytes\r\nOK bye\r\n"])
        self.assertTrue(c.transport.disconnecting)
        self.assertEqual(self.broker.queues.counters("default").sent, 1)

    def test_literal_in_the_read(self):
        """A command with a literal and the commands around it in one read: one write, bytes counted once."""
        c = self.client()
        writes = count_writes(c)
        data = b"PING\nSEND {3}\r\nabc\r\nRECV\n"
        c.send(data)
        self.assertEqual(writes, [b"OK PONG\r\nOK 1 queued 3 bytes\r\nDATA 3 1\r\nabc\r\n"])
        self.assertEqual(c.protocol.traffic.received, len(data))

    def test_large_replies_written_at_the_limit(self):
        """Replies reaching GATHER_LIMIT are written without waiting for the end of the read."""
        c = self.client()
        for _ in range(3):
            c.send(b"SEND {%d}\r\n" % (GATHER_LIMIT // 2) + b"m" * (GATHER_LIMIT // 2) + b"\r\n")
        c.output()
        writes = count_writes(c)
        c.send(b"RECV\nRECV\nRECV\nPING\n")
        self.assertEqual(len(writes), 2)
        self.assertGreaterEqual(len(writes[0]), GATHER_LIMIT)
        self.assertTrue(writes[1].endswith(b"OK PONG\r\n"))


class CommitOrderTests(Connected):
    """Replies that wait for the SQLite store's commit, among immediate ones."""

    def setUp(self):
        self.broker = make_broker(store="sqlite:" + self.mktemp() + ".sqlite")
        self.clock = self.broker.clock
        self.ports = iter(range(40000, 50000))

    def test_committing_replies_keep_their_order(self):
        """Replies behind a change wait for its commit, then go out in request order, in one write."""
        c = self.client()
        writes = count_writes(c)
        c.send(b"PING\nSEND a\nPING\nRECV\nPING\n")
        self.assertEqual(writes, [b"OK PONG\r\n"])
        self.assertEqual(c.output(), b"OK PONG\r\nOK 1 queued 1 bytes\r\nOK PONG\r\nDATA 1 1\r\na\r\nOK PONG\r\n")
        self.assertEqual(writes[1:], [b"OK 1 queued 1 bytes\r\nOK PONG\r\nDATA 1 1\r\na\r\nOK PONG\r\n"])

    def test_quit_behind_a_commit(self):
        """QUIT waiting behind a commit goes out after the replies before it, and the connection closes."""
        c = self.client()
        writes = count_writes(c)
        c.send(b"SEND a\nQUIT\nPING\n")
        self.assertEqual(writes, [])
        self.assertEqual(c.output(), b"OK 1 queued 1 bytes\r\nOK bye\r\n")
        self.assertEqual(writes, [b"OK 1 queued 1 bytes\r\n", b"OK bye\r\n"])
        self.assertTrue(c.transport.disconnecting)

    def test_long_read_past_the_pause(self):
        """A read of 200 commands (a literal among them, a line cut at its end) pauses at 64 waiting replies and
        still answers every command once, in order, after the commits; the cut line completes with the next read."""
        c = self.client()
        c.send(b"SEND a\r\n" * 100 + b"SEND {3}\r\nb\nc\r\n" + b"RECV\n" * 99 + b"PI")
        expected = [b"OK %d queued 1 bytes\r\n" % n for n in range(1, 101)] + [b"OK 101 queued 3 bytes\r\n"]
        expected += [b"DATA 1 %d\r\na\r\n" % n for n in range(1, 100)]
        self.assertEqual(c.output(), b"".join(expected))
        c.send(b"NG\n")
        self.assertEqual(c.output(), b"OK PONG\r\n")


class StreamedBodyTests(Connected):
    """A streamed body in the middle of a read."""

    def setUp(self):
        super().setUp()
        extra = CommandSet("test")

        self.pause_on_read = False

        @extra.verb("BIG", summary="a streamed payload of 1 MiB")
        def big(broker, session):
            first_read = self.c.protocol.pauseProducing if self.pause_on_read else None
            return StreamedData(1 << 20, "big", _Source(1 << 20, first_read))

        self.c = self.connect(CommandTable([general.commands, queue.commands, extra]))
        self.c.output()

    def test_replies_before_a_body_go_first(self):
        """Gathered replies are written before the body's header; the replies after it follow the body."""
        writes = count_writes(self.c)
        self.c.send(b"PING\nBIG\nPING\n")
        self.assertEqual(writes[:2], [b"OK PONG\r\n", b"DATA 1048576 big\r\n"])
        self.assertEqual(b"".join(writes[2:]), b"z" * (1 << 20) + b"\r\nOK PONG\r\n")

    def test_paused_producer_stops_the_body(self):
        """A transport that pauses its producer during a body stops the body and the commands after it."""
        writes = count_writes(self.c)
        self.pause_on_read = True
        self.c.send(b"PING\nBIG\nPING\n")
        self.assertEqual(writes, [b"OK PONG\r\n", b"DATA 1048576 big\r\n", b"z" * CHUNK])
        self.c.protocol.resumeProducing()
        self.assertEqual(b"".join(writes[3:]), b"z" * ((1 << 20) - CHUNK) + b"\r\nOK PONG\r\n")


class FramingTests(Connected):
    """Lines cut anywhere by the reads, and input that arrives while reading is paused."""

    def test_long_read_answered_in_full(self):
        """A read of 200 commands is answered in full at once, whatever number of lines is split off at a time."""
        c = self.client()
        writes = count_writes(c)
        c.send(b"PING\r\n" * 150 + b"SEND a\n" * 50 + b"RECV")
        queued = b"".join(b"OK %d queued 1 bytes\r\n" % n for n in range(1, 51))
        self.assertEqual(writes, [b"OK PONG\r\n" * 150 + queued])
        c.send(b"\n")
        self.assertEqual(writes[1:], [b"DATA 1 1\r\na\r\n"])

    def test_line_ending_split_across_reads(self):
        """A CRLF cut between two reads, and a line cut mid-verb, are each one command."""
        c = self.client()
        c.send(b"PING\r")
        c.send(b"\nPI")
        c.send(b"NG\r\nSEND x}\n")
        self.assertEqual(c.output(), b"OK PONG\r\nOK PONG\r\nOK 1 queued 2 bytes\r\n")

    def test_input_kept_while_paused(self):
        """Commands that arrive while the transport's buffer is full run, in order, once it drains."""
        c = self.client()
        c.protocol.pauseProducing()
        writes = count_writes(c)
        c.send(b"SEND a\nRECV\n")
        c.send(b"PING\n")
        self.assertEqual(writes, [])
        c.protocol.resumeProducing()
        self.assertEqual(writes, [b"OK 1 queued 1 bytes\r\nDATA 1 1\r\na\r\nOK PONG\r\n"])

    def test_lower_case_and_tagged_verbs(self):
        """Lines the compiled look-up does not take (lower case, tagged, spaced) get the same replies."""
        c = self.client()
        c.send(b"ping\n#t1 PING\n  PING\nPING  \nNOPE\n")
        self.assertEqual(
            c.output(),
            b"OK PONG\r\n#t1 OK PONG\r\nOK PONG\r\nOK PONG\r\n"
            b"ERR unknown-command unknown command 'NOPE'; HELP lists commands\r\n",
        )
