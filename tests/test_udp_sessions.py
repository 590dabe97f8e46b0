"""UDP sessions: opened by session verbs, counted toward the client cap, idle expiry, QUIT, events."""

from twisted.trial.unittest import SynchronousTestCase

from msgsvc.dispatch.commands import CommandSet
from msgsvc.dispatch.table import CommandTable
from msgsvc.dispatch.verbs import general, queue
from msgsvc.domain.events import Chat
from msgsvc.protocol.wire import Err, Ok
from tests.helpers import TcpHarness, UdpHarness, make_broker
from tests.udp_helpers import ALICE, BOB


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
