"""Microblog FOLLOW and UNFOLLOW: * TWEET events for new matching messages, over TCP and UDP."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from msgsvc.client.replies import Event
from msgsvc.dispatch.verbs import microblog as microblog_verbs
from tests.helpers import TcpHarness, UdpHarness, make_broker


class FollowTests(TestCase):
    """FOLLOW sends ``* TWEET`` events for new matching messages; UNFOLLOW stops them."""

    def setUp(self) -> None:
        self.broker = make_broker(max_clients=0)
        self.follower = TcpHarness(self.broker, port=40001)
        self.author = TcpHarness(self.broker, port=40002)
        self.follower.output()
        self.author.output()

    def events(self) -> list[str]:
        return [f"{e.name} {e.args}" for e in self.follower.received() if isinstance(e, Event)]

    def test_follow_tag(self) -> None:
        """A follower of #news gets messages with #News, not other ones."""
        self.assertEqual(self.follower.command(b"FOLLOW #News").text, "following #news")
        self.author.command(b"TWEET big #NEWS today")
        self.author.command(b"TWEET unrelated #sport")
        self.assertEqual(self.follower.output(), b"* TWEET 1 anonymous big #NEWS today\r\n")

    def test_follow_all(self) -> None:
        """FOLLOW #ALL gets every message, with or without hashtags."""
        self.assertEqual(self.follower.command(b"FOLLOW #all").text, "following all messages")
        self.author.command(b"TWEET plain")
        self.author.command(b"TWEET #x")
        self.assertEqual(self.events(), ["TWEET 1 anonymous plain", "TWEET 2 anonymous #x"])

    def test_one_event_per_message(self) -> None:
        """A message matching several followed hashtags (and #ALL) is sent once."""
        for line in (b"FOLLOW #a", b"FOLLOW #b", b"FOLLOW #ALL", b"FOLLOW #a"):
            self.follower.command(line)
        self.author.command(b"TWEET #a #b #A")
        self.assertEqual(self.events(), ["TWEET 1 anonymous #a #b #A"])

    def test_author_not_told(self) -> None:
        """The author gets its OK, not a TWEET event about its own message."""
        self.author.command(b"FOLLOW #ALL")
        self.author.send(b"TWEET mine\n")
        self.assertEqual(self.author.output(), b"OK 1 posted\r\n")

    def test_named_author_in_event(self) -> None:
        """The event names the author (a guest as ~name)."""
        self.broker.chat.set_name(self.author.protocol.session, "bob")
        self.follower.command(b"FOLLOW #ALL")
        self.author.command("TWEET \u00e9t\u00e9 #x".encode())
        self.assertEqual(self.follower.output(), "* TWEET 1 ~bob \u00e9t\u00e9 #x\r\n".encode())

    def test_refused_message_not_sent(self) -> None:
        """A refused message reaches no follower."""
        self.follower.command(b"FOLLOW #ALL")
        self.author.command(b"TWEET " + b"x" * 151)
        self.assertEqual(self.follower.output(), b"")

    def test_unfollow(self) -> None:
        """UNFOLLOW #tag stops that hashtag only; UNFOLLOW of something not followed is harmless."""
        self.follower.command(b"FOLLOW #a")
        self.follower.command(b"FOLLOW #b")
        self.assertEqual(self.follower.command(b"UNFOLLOW #A").text, "unfollowed #a")
        self.assertEqual(self.follower.command(b"UNFOLLOW #a").text, "not following #a")
        self.author.command(b"TWEET #a only")
        self.author.command(b"TWEET #b only")
        self.assertEqual(self.events(), ["TWEET 2 anonymous #b only"])

    def test_unfollow_all(self) -> None:
        """UNFOLLOW #ALL stops every subscription, hashtags and #ALL alike."""
        self.follower.command(b"FOLLOW #a")
        self.follower.command(b"FOLLOW #ALL")
        self.assertEqual(self.follower.command(b"UNFOLLOW #ALL").text, "following nothing")
        self.author.command(b"TWEET #a")
        self.assertEqual(self.follower.output(), b"")
        self.assertEqual(self.broker.microblog._followers, {})

    def test_bad_hashtag(self) -> None:
        """FOLLOW and UNFOLLOW need a well-formed hashtag."""
        for line in (b"FOLLOW", b"FOLLOW news", b"FOLLOW #no-dash", b"UNFOLLOW #", b"FOLLOW #a #b"):
            self.assertEqual(self.follower.command(line).code, "bad-args", line)

    def test_follow_cap(self) -> None:
        """A client may follow at most MAX_FOLLOWS hashtags at once."""
        self.patch(microblog_verbs, "MAX_FOLLOWS", 2)
        self.follower.command(b"FOLLOW #a")
        self.follower.command(b"FOLLOW #b")
        reply = self.follower.command(b"FOLLOW #c")
        self.assertEqual((reply.code, reply.text), ("bad-args", "a client may follow at most 2 hashtags"))
        self.follower.command(b"UNFOLLOW #a")
        self.assertEqual(self.follower.command(b"FOLLOW #c").text, "following #c")

    def test_disconnect_forgets(self) -> None:
        """A follower that disconnects is forgotten and gets nothing more."""
        self.follower.command(b"FOLLOW #a")
        self.follower.command(b"FOLLOW #ALL")
        self.follower.disconnect()
        self.assertEqual(self.broker.microblog._followers, {})
        self.assertEqual(self.broker.microblog._following, {})
        self.author.command(b"TWEET #a")
        self.assertEqual(self.follower.output(), b"")

    def test_udp_follower(self) -> None:
        """FOLLOW over UDP opens a session whose TWEET events arrive as datagrams; QUIT ends them."""
        udp = UdpHarness(self.broker)
        self.assertEqual(udp.command(b"FOLLOW #x").text, "following #x")
        self.assertEqual(len(self.broker.sessions), 3)
        self.author.command(b"TWEET over udp #X")
        self.assertEqual(udp.datagrams(), [b"* TWEET 1 anonymous over udp #X\r\n"])
        udp.command(b"QUIT")
        self.author.command(b"TWEET again #x")
        self.assertEqual(udp.datagrams(), [])
        self.assertEqual(self.broker.microblog._followers, {})

    def test_udp_bad_follow_opens_no_session(self) -> None:
        """A refused FOLLOW over UDP leaves no session behind."""
        udp = UdpHarness(self.broker)
        self.assertEqual(udp.command(b"FOLLOW nope").code, "bad-args")
        self.assertEqual(len(self.broker.sessions), 2)

    def test_udp_author_to_tcp_follower(self) -> None:
        """A message posted over UDP reaches TCP followers."""
        self.follower.command(b"FOLLOW #ALL")
        UdpHarness(self.broker).command(b"TWEET from udp")
        self.assertEqual(self.events(), ["TWEET 1 anonymous from udp"])
