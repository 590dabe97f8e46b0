"""Tests for the UDP front end over a recording datagram transport."""

from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from msgsvc.dispatch.commands import CommandSet, Text
from msgsvc.dispatch.table import CommandTable
from msgsvc.dispatch.verbs import build_table, general, queue
from msgsvc.domain.events import Chat
from msgsvc.protocol import framing
from msgsvc.protocol.wire import Data, Err, Ok
from msgsvc.transports.reply_cache import CACHE_ENTRY_OVERHEAD, ReplyCache
from msgsvc.transports.udp import MAX_DATAGRAM
from tests.helpers import TcpHarness, UdpHarness, make_broker
from tests.test_commands import Recorder

ALICE = ("127.0.0.1", 50001)
BOB = ("127.0.0.1", 50002)


class UdpCommandTests(SynchronousTestCase):
    """One command per datagram, one reply datagram."""

    def setUp(self):
        self.broker = make_broker()
        self.udp = UdpHarness(self.broker)

    def test_ping(self):
        """A datagram command gets exactly the bytes a TCP reply would have."""
        self.udp.send(b"PING\n")
        self.assertEqual(self.udp.datagrams(), [b"OK PONG\r\n"])

    def test_line_ending_optional(self):
        """No line ending, LF or CRLF: all work."""
        for datagram in (b"PING", b"PING\n", b"PING\r\n"):
            self.assertEqual(self.udp.command(datagram).text, "PONG")

    def test_send_recv(self):
        """SEND and RECV work over UDP without a session."""
        self.assertEqual(self.udp.command(b"SEND  two  spaces").text, "1 queued 12 bytes")
        self.assertEqual(self.udp.command(b"RECV", BOB).payload, b" two  spaces")
        self.assertEqual(self.broker.sessions, [])

    def test_literal(self):
        """A literal takes the bytes after its LF up to the end of the datagram."""
        payload = b"line1\nline2\r\n\x00"
        self.udp.send(b"SEND {%d}\n" % len(payload) + payload)
        self.udp.datagrams()
        self.assertEqual(self.udp.command(b"RECV").payload, payload)

    def test_literal_trailing_newline_tolerated(self):
        """One LF or CRLF after the literal bytes is accepted and dropped."""
        self.assertEqual(self.udp.command(b"SEND {3}\nabc\n").text, "1 queued 3 bytes")

    def test_literal_length_mismatch(self):
        """A literal that does not match the datagram is refused; nothing is stored."""
        for datagram in (b"SEND {5}\nabc", b"SEND {2}\nabcdef"):
            self.assertEqual(self.udp.command(datagram).code, "bad-args")
        self.assertEqual(self.broker.queues.depths(), [])

    def test_two_commands_refused(self):
        """A datagram holds one command."""
        reply = self.udp.command(b"#t SEND a\nSEND b\n")
        self.assertEqual((reply.code, reply.tag), ("bad-args", "t"))
        self.assertEqual(self.broker.queues.depths(), [])

    def test_line_too_long(self):
        """An over-long command line is refused (UDP has no connection to close)."""
        self.assertEqual(self.udp.command(b"SEND " + b"x" * 9000).code, "line-too-long")

    def test_oversized_literal(self):
        """A literal over --max-message is refused."""
        broker = make_broker(max_message=4)
        udp = UdpHarness(broker)
        self.assertEqual(udp.command(b"SEND {5}\n12345").code, "too-big")

    def test_empty_datagram_ignored(self):
        """An empty datagram gets no reply."""
        self.udp.send(b"")
        self.udp.send(b"\n")
        self.assertEqual(self.udp.datagrams(), [])

    def test_garbage(self):
        """Binary garbage gets ERR unknown-command."""
        self.assertEqual(self.udp.command(b"\xde\xad\xbe\xef").code, "unknown-command")

    def test_huge_literal_marker(self) -> None:
        """A marker of thousands of digits is too-big, said briefly, in one reply datagram."""
        self.udp.send(b"#h SEND {" + b"9" * 5000 + b"}\nabc", ALICE)
        self.assertEqual(
            self.udp.datagrams(ALICE),
            [b"#h ERR too-big literal of more than 10^20 bytes exceeds the 1048576-byte limit\r\n"],
        )

    def test_leading_spaces(self) -> None:
        """Spaces before the verb are ignored; a datagram of spaces is no command."""
        self.assertEqual(self.udp.command(b"  PING\n").text, "PONG")
        self.udp.send(b"   \n")
        self.assertEqual(self.udp.datagrams(), [])
        reply = self.udp.command(b"#t   ")
        self.assertEqual((reply.tag, reply.code, reply.text), ("t", "bad-args", "a command is missing after the tag"))

    def test_help_of_one_verb(self) -> None:
        """HELP <verb> works over UDP too."""
        self.assertTrue(self.udp.command(b"HELP recv").payload.startswith(b"RECV [@queue] [wait-seconds]\r\n"))

    def test_reply_too_big_for_datagram(self):
        """A message too large for one datagram is refused over UDP and stays queued for TCP."""
        big = b"x" * (MAX_DATAGRAM - 10)
        tcp = TcpHarness(self.broker)
        tcp.output()
        tcp.send(b"SEND {%d}\n" % len(big) + big + b"\n")
        tcp.output()
        self.assertEqual(self.udp.command(b"RECV").code, "too-big")
        self.assertEqual(tcp.command(b"RECV").payload, big)

    def test_largest_message_that_fits(self):
        """The largest payload the UDP client may take arrives in one datagram."""
        size = MAX_DATAGRAM - 64
        self.broker.queues.send("default", b"y" * size)
        self.udp.send(b"#abcdefghijklmnop RECV")
        (datagram,) = self.udp.datagrams()
        self.assertLessEqual(len(datagram), MAX_DATAGRAM)
        self.assertTrue(datagram.startswith(b"#abcdefghijklmnop DATA %d 1\r\n" % size))

    def test_cross_transport(self):
        """A message sent over UDP is received over TCP and vice versa."""
        tcp = TcpHarness(self.broker)
        tcp.output()
        self.udp.command(b"SEND from udp")
        self.assertEqual(tcp.command(b"RECV").payload, b"from udp")
        tcp.command(b"SEND from tcp")
        self.assertEqual(self.udp.command(b"RECV").payload, b"from tcp")

    def test_waiting_recv_over_udp(self):
        """RECV with a wait over UDP answers when a message arrives."""
        self.udp.send(b"RECV 5", ALICE)
        self.assertEqual(self.udp.datagrams(ALICE), [])
        self.udp.command(b"SEND hi", BOB)
        self.assertEqual(self.udp.received(ALICE)[0].payload, b"hi")


class TagRetryTests(SynchronousTestCase):
    """Tagged requests are executed once per (address, tag) within 60 s."""

    def setUp(self):
        self.broker = make_broker()
        self.udp = UdpHarness(self.broker)

    def test_retry_not_executed_twice(self):
        """A repeated tagged SEND is answered from the cache and queues one message."""
        first = self.udp.command(b"#r1 SEND once", ALICE)
        again = self.udp.command(b"#r1 SEND once", ALICE)
        self.assertEqual(first, again)
        self.assertEqual(self.broker.queues.depths(), [("default", 1)])

    def test_retry_of_recv_gets_same_message(self):
        """A retried RECV gets the same message again instead of taking another."""
        self.broker.queues.send("default", b"a")
        self.broker.queues.send("default", b"b")
        self.assertEqual(self.udp.command(b"#x RECV", ALICE).payload, b"a")
        self.assertEqual(self.udp.command(b"#x RECV", ALICE).payload, b"a")
        self.assertEqual(self.udp.command(b"#y RECV", ALICE).payload, b"b")

    def test_same_tag_other_address_runs(self):
        """The cache is per address: another client's identical tag is a new request."""
        self.udp.command(b"#t SEND a", ALICE)
        self.udp.command(b"#t SEND a", BOB)
        self.assertEqual(self.broker.queues.depths(), [("default", 2)])

    def test_retry_while_running_is_silent(self):
        """A retry that arrives while the first request still waits gets no second reply."""
        self.udp.send(b"#w RECV 10", ALICE)
        self.udp.send(b"#w RECV 10", ALICE)
        self.udp.command(b"SEND x", BOB)
        self.assertEqual(len(self.udp.datagrams(ALICE)), 1)

    def test_cache_expires(self):
        """After 60 s the same tag is a new request."""
        self.udp.command(b"#e SEND a", ALICE)
        self.broker.clock.advance(60)
        self.udp.command(b"#e SEND a", ALICE)
        self.assertEqual(self.broker.queues.depths(), [("default", 2)])

    def test_cache_bounded_in_bytes(self):
        """The cache forgets its oldest replies beyond its byte budget."""
        cache = ReplyCache(self.broker.clock, max_bytes=2 * (5 + CACHE_ENTRY_OVERHEAD))
        for n in range(5):
            cache.begin((ALICE, n))
            cache.store((ALICE, n), b"12345")
        self.assertEqual(cache.lookup((ALICE, 2)), (False, None))
        self.assertEqual(cache.lookup((ALICE, 3)), (True, b"12345"))
        self.assertEqual(cache.lookup((ALICE, 4)), (True, b"12345"))


class SessionTests(SynchronousTestCase):
    """UDP sessions: opened by session verbs, counted toward the cap, idle expiry, QUIT."""

    def setUp(self):
        self.broker = make_broker(max_clients=2, idle_timeout=30)
        commands = CommandSet()

        @commands.verb("JOIN", summary="open a session", remembers_client=True)
        def join(broker, session):
            return Ok("joined")

        @commands.verb("BADJOIN", summary="a session verb that fails", remembers_client=True)
        def bad_join(broker, session):
            return Err("bad-args", "no")

        self.udp = UdpHarness(self.broker, CommandTable([general.commands, queue.commands, commands]))

    def test_session_verb_opens_session(self):
        """A session verb makes the address a client holding a slot."""
        self.udp.command(b"JOIN", ALICE)
        (session,) = self.broker.sessions
        self.assertEqual((session.client.transport_name, session.client.peer), ("udp", ALICE))

    def test_sessions_count_toward_cap(self):
        """UDP sessions and TCP connections share the cap; the refusal has the original's text."""
        TcpHarness(self.broker)
        self.udp.command(b"JOIN", ALICE)
        reply = self.udp.command(b"JOIN", BOB)
        self.assertEqual((reply.code, reply.text), ("full", "Server is full, try again later."))
        self.udp.command(b"QUIT", ALICE)
        self.assertEqual(self.udp.command(b"JOIN", BOB).text, "joined")

    def test_failed_session_verb_leaves_no_session(self):
        """A session verb that fails does not leave a session behind."""
        self.assertEqual(self.udp.command(b"BADJOIN", ALICE).code, "bad-args")
        self.assertEqual(self.broker.sessions, [])

    def test_quit_ends_session(self):
        """QUIT answers OK bye and frees the slot."""
        self.udp.command(b"JOIN", ALICE)
        self.assertEqual(self.udp.command(b"QUIT", ALICE).text, "bye")
        self.assertEqual(self.broker.sessions, [])

    def test_idle_expiry(self):
        """An idle session gets * BYE idle-timeout and is ended; commands keep it alive."""
        self.udp.command(b"JOIN", ALICE)
        self.broker.clock.advance(29)
        self.udp.command(b"PING", ALICE)
        self.broker.clock.advance(29)
        self.assertEqual(len(self.broker.sessions), 1)
        self.broker.clock.advance(1)
        self.assertEqual(self.udp.datagrams(ALICE), [b"* BYE idle-timeout\r\n"])
        self.assertEqual(self.broker.sessions, [])

    def test_events_reach_session(self):
        """Events for a session arrive as datagrams with the same bytes as over TCP."""
        self.udp.command(b"JOIN", ALICE)
        self.broker.sessions[0].client.send_event(Chat("bob", "hi"))
        self.assertEqual(self.udp.datagrams(ALICE), [b"* CHAT bob hi\r\n"])

    def test_shutdown_says_bye(self):
        """On shutdown a UDP session gets * BYE shutdown."""
        self.udp.command(b"JOIN", ALICE)
        self.successResultOf(self.broker.shutdown())
        self.assertEqual(self.udp.datagrams(ALICE), [b"* BYE shutdown\r\n"])


class RefusalTests(SynchronousTestCase):
    """Datagrams refused by the framing, or by the table as malformed, are reported to the refusal log."""

    def setUp(self) -> None:
        self.broker = make_broker(max_message=4)
        self.table = build_table()
        self.table.refusals = Recorder()
        self.udp = UdpHarness(self.broker, self.table)

    def test_framing_refusals(self) -> None:
        """Over-long lines, two commands, too-big and mismatched literals are logged with the sender."""
        datagrams = [b"SEND " + b"x" * 9000, b"PING\nPING", b"SEND {5}\n12345", b"SEND {3}\n1"]
        codes = [self.udp.command(datagram, ALICE).code for datagram in datagrams]
        self.assertEqual(codes, ["line-too-long", "bad-args", "too-big", "bad-args"])
        self.assertEqual(
            [(who, code) for who, code, _ in self.table.refusals.refusals], [("udp 127.0.0.1:50001", c) for c in codes]
        )

    def test_malformed_request(self) -> None:
        """An unknown verb is logged by the command table with the UDP sender."""
        self.udp.command(b"FROB", BOB)
        self.assertEqual(self.table.refusals.refusals[0][:2], ("udp 127.0.0.1:50002", "unknown-command"))

    def test_good_commands_not_logged(self) -> None:
        """Commands that are answered normally log nothing."""
        self.udp.command(b"PING")
        self.udp.command(b"RECV")
        self.assertEqual(self.table.refusals.refusals, [])


class UndeliveredTests(SynchronousTestCase):
    """A reply too large for one datagram gives back what its command took."""

    def setUp(self) -> None:
        self.given_back: list[str] = []
        commands = CommandSet()
        big = b"x" * MAX_DATAGRAM
        commands.verb("BIG", summary="s")(
            lambda broker, session: Data(big, "1", undelivered=lambda: self.given_back.append("big"))
        )
        commands.verb("FITS", summary="s")(
            lambda broker, session: Data(b"y", "2", undelivered=lambda: self.given_back.append("fits"))
        )
        self.udp = UdpHarness(make_broker(), CommandTable([general.commands, commands]))

    def test_too_big_gives_back(self) -> None:
        """The sender gets ERR too-big with the hint to use TCP; the reply's undelivered hook runs once."""
        self.udp.send(b"#b BIG", ALICE)
        (datagram,) = self.udp.datagrams(ALICE)
        size = len(b"#b DATA %d 1\r\n" % MAX_DATAGRAM) + MAX_DATAGRAM + 2
        self.assertEqual(
            datagram,
            b"#b ERR too-big a %d-byte reply does not fit one datagram; use TCP or a client that speaks transfers\r\n"
            % size,
        )
        self.assertEqual(self.given_back, ["big"])

    def test_delivered_keeps(self) -> None:
        """A reply that fits is sent, and nothing is given back."""
        self.assertEqual(self.udp.command(b"FITS", ALICE).payload, b"y")
        self.assertEqual(self.given_back, [])


class Exploding(Err):
    """A reply whose encoding fails: a bug in the server."""

    def encode(self, tag: bytes | None = None) -> bytes:
        raise RuntimeError("cannot encode")


class ExplodingSink:
    """A literal sink that fails while the literal is written."""

    def write(self, data: bytes) -> None:
        raise RuntimeError("disk on fire")

    def finish(self) -> Any:
        raise AssertionError("not reached")

    def abort(self) -> None:
        pass


class SafetyNetTests(SynchronousTestCase):
    """A bug while handling one datagram becomes one ERR internal reply, logged once; the server carries on."""

    def setUp(self) -> None:
        self.broker = make_broker()
        self.later: Deferred[Err] = Deferred()
        commands = CommandSet()
        commands.verb("BADREPLY", summary="s")(lambda broker, session: Exploding("bad-args", "x"))
        commands.verb("LATER", summary="s")(lambda broker, session: self.later)
        commands.verb("BADJOIN", summary="s", remembers_client=True)(lambda broker, session: Exploding("bad-args", "x"))
        commands.verb("SINK", Text("data"), summary="s", literal_sink=lambda broker, session: ExplodingSink())(
            lambda broker, session, data: Ok()
        )
        self.udp = UdpHarness(self.broker, CommandTable([general.commands, queue.commands, commands]))

    def assertInternal(self, datagram: bytes, tag: bytes = b"") -> None:
        """The datagram gets exactly one ERR internal reply, and one error is logged."""
        self.udp.send(datagram, ALICE)
        self.assertEqual(self.udp.datagrams(ALICE), [tag + b"ERR internal internal error; it has been logged\r\n"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.udp.command(b"PING", ALICE).text, "PONG")
        self.assertEqual(self.broker.sessions, [])

    def test_parse_failure(self) -> None:
        """An exception while parsing the datagram is answered ERR internal."""

        def broken(line: bytes) -> None:
            raise RuntimeError("parser bug")

        self.patch(framing, "parse_request", broken)
        self.udp.send(b"PING", ALICE)
        self.assertEqual(self.udp.datagrams(ALICE), [b"ERR internal internal error; it has been logged\r\n"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_literal_sink_failure(self) -> None:
        """An exception in a literal sink is answered ERR internal with the request's tag."""
        self.assertInternal(b"#s1 SINK {3}\nabc", b"#s1 ")

    def test_reply_failure(self) -> None:
        """An exception while encoding a ready reply is answered ERR internal."""
        self.assertInternal(b"BADREPLY")

    def test_failed_session_verb_leaves_no_session(self) -> None:
        """A session verb that fails with a bug does not leave its session behind."""
        self.assertInternal(b"BADJOIN")

    def test_later_reply_failure(self) -> None:
        """An exception while encoding a reply that came later is answered ERR internal, once."""
        self.udp.send(b"#l LATER", ALICE)
        self.assertEqual(self.udp.datagrams(ALICE), [])
        self.later.callback(Exploding("bad-args", "x"))
        self.assertEqual(self.udp.datagrams(ALICE), [b"#l ERR internal internal error; it has been logged\r\n"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_retry_gets_the_same_error(self) -> None:
        """A retried tagged datagram gets the saved ERR internal without running again."""
        self.assertInternal(b"#s2 SINK {3}\nabc", b"#s2 ")
        self.udp.send(b"#s2 SINK {3}\nabc", ALICE)
        self.assertEqual(self.udp.datagrams(ALICE), [b"#s2 ERR internal internal error; it has been logged\r\n"])
        self.assertEqual(self.flushLoggedErrors(RuntimeError), [])

    def test_failure_after_reply_sends_nothing_more(self) -> None:
        """A failure after the reply went out is logged, but the client gets no second reply."""
        close = self.broker.close_session

        def broken(session: Any) -> None:
            close(session)
            raise RuntimeError("cleanup bug")

        self.patch(self.broker, "close_session", broken)
        self.udp.send(b"PING", ALICE)
        self.assertEqual(self.udp.datagrams(ALICE), [b"OK PONG\r\n"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
