"""The microblog: TWEET, LAST, TAGGED, FOLLOW/UNFOLLOW, its store, and the msgsvc-tweet CLI."""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.defer import succeed
from twisted.trial.unittest import TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from msgsvc.client.replies import Event
from msgsvc.dispatch.verbs import microblog as microblog_verbs
from msgsvc.domain.microblog import hashtags
from msgsvc.store.interfaces import ITweetStore, Tweet
from msgsvc.store.memory import MemoryTweetStore
from tests.helpers import TcpHarness, UdpHarness, make_broker, run_cli, serve_for_test
from tests.test_forum import answering_at_once

EMPTY = b"DATA 13 last\r\nEmpty Message\r\n"


class TweetTests(TestCase):
    """TWEET stores a message of at most 150 characters; LAST reads the most recent one."""

    def setUp(self) -> None:
        self.broker = make_broker()
        self.client = TcpHarness(self.broker)
        self.client.output()

    def say(self, line: bytes) -> bytes:
        self.client.send(line + b"\n")
        return self.client.output()

    def test_posted(self) -> None:
        """TWEET answers OK with the new message's id, and ids increase."""
        self.assertEqual(self.say(b"TWEET hello"), b"OK 1 posted\r\n")
        self.assertEqual(self.say(b"TWEET again"), b"OK 2 posted\r\n")

    def test_150_multibyte_characters_accepted(self) -> None:
        """150 characters are accepted however many bytes they take (here 600)."""
        text = "\U0001f600" * 150
        self.assertEqual(self.say(b"TWEET " + text.encode()), b"OK 1 posted\r\n")
        self.assertEqual(self.say(b"LAST"), b"DATA 600 last\r\n" + text.encode() + b"\r\n")

    def test_151_characters_refused_and_nothing_stored(self) -> None:
        """151 characters get ERR too-long, multi-byte or ASCII, and nothing is stored."""
        self.say(b"TWEET kept #t")
        self.assertEqual(
            self.say(b"TWEET " + ("\u00e9" * 150 + " #t").encode()),
            b"ERR too-long message exceeds 150 characters\r\n",
        )
        self.assertEqual(self.say(b"TWEET " + b"x" * 151), b"ERR too-long message exceeds 150 characters\r\n")
        self.assertEqual(self.say(b"LAST"), b"DATA 7 last\r\nkept #t\r\n")
        self.assertEqual(self.say(b"TAGGED #t"), b"DATA 21 tagged\r\n1 anonymous kept #t\r\n\r\n")
        self.assertEqual(self.say(b"TWEET next"), b"OK 2 posted\r\n")

    def test_not_utf8_refused(self) -> None:
        """A message that is not UTF-8 gets ERR bad-args and is not stored."""
        self.assertEqual(self.say(b"TWEET caf\xe9"), b"ERR bad-args a message must be UTF-8\r\n")
        self.assertEqual(self.say(b"LAST"), EMPTY)

    def test_line_break_refused(self) -> None:
        """A literal holding a line break gets ERR bad-args: messages travel as event lines."""
        self.assertEqual(
            self.say(b"TWEET {3}\r\na\nb"), b"ERR bad-args a message must be one line without control characters\r\n"
        )
        self.assertEqual(self.say(b"LAST"), EMPTY)

    def test_literal_accepted(self) -> None:
        """A literal carries the message exactly, spaces included."""
        self.assertEqual(self.say(b"TWEET {4}\r\n a  "), b"OK 1 posted\r\n")
        self.assertEqual(self.say(b"LAST"), b"DATA 4 last\r\n a  \r\n")

    def test_text_verbatim(self) -> None:
        """The text after the single space following TWEET is kept verbatim."""
        self.say(b"TWEET  two  spaces ")
        self.assertEqual(self.say(b"LAST"), b"DATA 13 last\r\n two  spaces \r\n")

    def test_last_without_messages(self) -> None:
        """LAST says Empty Message when nothing was posted."""
        self.assertEqual(self.say(b"LAST"), EMPTY)

    def test_last_after_empty_message(self) -> None:
        """LAST says Empty Message when the last message posted was empty, as the original did."""
        self.say(b"TWEET first")
        self.assertEqual(self.say(b"TWEET"), b"OK 2 posted\r\n")
        self.assertEqual(self.say(b"LAST"), EMPTY)
        self.assertEqual(self.say(b"TWEET "), b"OK 3 posted\r\n")
        self.assertEqual(self.say(b"LAST"), EMPTY)
        self.say(b"TWEET back")
        self.assertEqual(self.say(b"LAST"), b"DATA 4 last\r\nback\r\n")

    def test_author_is_name(self) -> None:
        """A guest's messages carry ~name as author; a client without a name is anonymous."""
        self.broker.chat.set_name(self.client.protocol.session, "alice")
        self.say(b"TWEET hi #x")
        other = TcpHarness(self.broker, port=40001)
        other.output()
        other.command(b"TWEET yo #x")
        self.assertEqual(self.say(b"TAGGED #x"), b"DATA 35 tagged\r\n2 anonymous yo #x\r\n1 ~alice hi #x\r\n\r\n")

    def test_over_udp(self) -> None:
        """TWEET and LAST work over UDP without a session."""
        udp = UdpHarness(self.broker)
        self.assertEqual(udp.command(b"#t1 TWEET hi").text, "1 posted")
        self.assertEqual(udp.command(b"LAST").payload, b"hi")
        self.assertEqual(self.broker.sessions, [self.client.protocol.session])


class HashtagTests(TestCase):
    """Which words of a message are hashtags."""

    def test_case_folded(self) -> None:
        """Hashtags are lower-cased and counted once."""
        self.assertEqual(hashtags("#Python and #PYTHON, #py_3"), {"python", "py_3"})

    def test_boundaries(self) -> None:
        """A hashtag starts a word and its 1-50 characters end it."""
        self.assertEqual(hashtags("a#b ##c #"), frozenset())
        self.assertEqual(hashtags("(#x) #y. #z!"), {"x", "y", "z"})
        self.assertEqual(hashtags("#" + "a" * 50), {"a" * 50})
        self.assertEqual(hashtags("#" + "a" * 51), frozenset())
        self.assertEqual(hashtags("#caf\u00e9 #ok"), {"ok"})


class TaggedTests(TestCase):
    """TAGGED lists the newest messages with a hashtag."""

    def setUp(self) -> None:
        self.broker = make_broker()
        self.client = TcpHarness(self.broker)
        self.client.output()

    def tagged(self, line: bytes) -> list[str]:
        reply = self.client.command(line)
        self.assertEqual((reply.kind, reply.text), ("DATA", "tagged"))
        return reply.payload.decode().split("\r\n")[:-1]

    def test_ignores_case(self) -> None:
        """#Python, #python and #PYTHON are one hashtag, in messages and in TAGGED."""
        self.client.command(b"TWEET I like #Python")
        self.client.command(b"TWEET no tag")
        self.client.command(b"TWEET #PYTHON again")
        self.assertEqual(self.tagged(b"TAGGED #pYtHoN"), ["3 anonymous #PYTHON again", "1 anonymous I like #Python"])

    def test_newest_first_default_20(self) -> None:
        """Without k, the 20 newest are listed, newest first."""
        for n in range(1, 26):
            self.client.command(b"TWEET %d #many" % n)
        lines = self.tagged(b"TAGGED #many")
        self.assertEqual(len(lines), 20)
        self.assertEqual((lines[0], lines[-1]), ("25 anonymous 25 #many", "6 anonymous 6 #many"))

    def test_k(self) -> None:
        """k limits the listing to the k newest."""
        for n in range(1, 4):
            self.client.command(b"TWEET %d #k" % n)
        self.assertEqual(self.tagged(b"TAGGED #k 2"), ["3 anonymous 3 #k", "2 anonymous 2 #k"])
        self.assertEqual(len(self.tagged(b"TAGGED #k 1000")), 3)

    def test_unknown_tag_empty(self) -> None:
        """A hashtag nobody used gives an empty listing."""
        self.assertEqual(self.client.command(b"TAGGED #nothing").payload, b"")

    def test_bad_arguments(self) -> None:
        """A malformed hashtag or k gets ERR bad-args."""
        for line in (b"TAGGED", b"TAGGED tag", b"TAGGED #", b"TAGGED #" + b"a" * 51, b"TAGGED #a-b", b"TAGGED #x 0"):
            self.assertEqual(self.client.command(line).code, "bad-args", line)
        for line in (b"TAGGED #x 1001", b"TAGGED #x -1", b"TAGGED #x two", b"TAGGED #x 1 2"):
            self.assertEqual(self.client.command(line).code, "bad-args", line)

    def test_uses_tag_index(self) -> None:
        """TAGGED asks the store's per-hashtag index for k messages instead of reading every message."""
        calls = []

        @implementer(ITweetStore)
        class IndexOnly(MemoryTweetStore):
            def last(self):
                raise AssertionError("TAGGED must not read messages one by one")

            def tagged(self, tag, limit):
                calls.append((tag, limit))
                return succeed([Tweet(7, "bob", "hi #tag")])

        self.broker.microblog._store = IndexOnly()
        self.assertEqual(self.tagged(b"TAGGED #TAG 5"), ["7 bob hi #tag"])
        self.assertEqual(calls, [("tag", 5)])


class MemoryTweetStoreTests(TestCase):
    """The in-memory ITweetStore."""

    def test_interface(self) -> None:
        """MemoryTweetStore provides ITweetStore."""
        verifyObject(ITweetStore, MemoryTweetStore())

    def test_index(self) -> None:
        """Messages are found by each of their tags, newest first, and last() is the newest overall."""
        store = MemoryTweetStore()
        self.assertIsNone(self.successResultOf(store.last()))
        self.assertEqual(self.successResultOf(store.post("a", "one", frozenset({"x", "y"}))), 1)
        self.assertEqual(self.successResultOf(store.post("b", "two", frozenset({"y"}))), 2)
        self.assertEqual(self.successResultOf(store.post("c", "three", frozenset())), 3)
        self.assertEqual(self.successResultOf(store.tagged("x", 5)), [Tweet(1, "a", "one")])
        self.assertEqual(self.successResultOf(store.tagged("y", 5)), [Tweet(2, "b", "two"), Tweet(1, "a", "one")])
        self.assertEqual(self.successResultOf(store.tagged("y", 1)), [Tweet(2, "b", "two")])
        self.assertEqual(self.successResultOf(store.last()), Tweet(3, "c", "three"))


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


class TweetCliTests(TestCase):
    """``msgsvc-tweet`` against a real server on a free port."""

    def setUp(self) -> None:
        self.broker = make_broker(reactor)
        self.port = str(serve_for_test(self, self.broker))

    async def tweet(self, *args: str) -> tuple[str, str, int]:
        out, err, code = await run_cli("msgsvc.cli.tweet", *args)
        return out.decode(), err.decode(), code

    async def test_upload_then_download(self) -> None:
        """-u posts the message and says Transmission Successful; -d prints it back."""
        out, err, code = await self.tweet("-u", "127.0.0.1", self.port, "h\u00e9llo #World")
        self.assertEqual((out, err, code), ("Transmission Successful: message 1 posted\n", "", 0))
        out, err, code = await self.tweet("-d", "127.0.0.1", self.port)
        self.assertEqual((out, err, code), ("Received Message: h\u00e9llo #World\n", "", 0))

    async def test_download_empty(self) -> None:
        """-d with nothing posted prints Empty Message."""
        out, _, code = await self.tweet("-d", "127.0.0.1", self.port)
        self.assertEqual((out, code), ("Received Message: Empty Message\n", 0))

    async def test_over_udp(self) -> None:
        """--udp posts and reads over UDP."""
        out, _, code = await self.tweet("--udp", "-u", "127.0.0.1", self.port, " spaced ")
        self.assertEqual((out, code), ("Transmission Successful: message 1 posted\n", 0))
        self.assertEqual(self.successResultOf(self.broker.microblog.last()).text, " spaced ")

    async def test_too_long_refused(self) -> None:
        """A message over 150 characters gets a one-line error, exit status 1, and nothing stored."""
        out, err, code = await self.tweet("-u", "127.0.0.1", self.port, "\u00e9" * 151)
        self.assertEqual(
            (out, err, code), ("", "msgsvc-tweet: server refused: too-long: message exceeds 150 characters\n", 1)
        )
        self.assertIsNone(self.successResultOf(self.broker.microblog.last()))

    async def test_unreachable(self) -> None:
        """A server that cannot be reached gives a one-line error and exit status 1."""
        from twisted.internet.protocol import Factory

        closed = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        port = str(closed.getHost().port)
        await closed.stopListening()
        out, err, code = await self.tweet("-d", "127.0.0.1", port)
        self.assertEqual((out, code), ("", 1))
        self.assertEqual(err, f"msgsvc-tweet: cannot reach 127.0.0.1:{port} over TCP: connection refused\n")

    async def test_usage(self) -> None:
        """-u without a message is a usage error (exit status 2)."""
        out, err, code = await self.tweet("-u", "127.0.0.1", self.port)
        self.assertEqual((out, code), ("", 2))
        self.assertIn("-u takes a", err)


class _AtOnce:
    """Runs a microblog test class on a tweet store that answers at once (values, not Deferreds)."""

    def setUp(self) -> None:
        self.broker = answering_at_once(make_broker())
        self.client = TcpHarness(self.broker)
        self.client.output()


class AtOnceTweetTests(_AtOnce, TweetTests):
    """TweetTests on a tweet store answering at once."""


class AtOnceTaggedTests(_AtOnce, TaggedTests):
    """TaggedTests on a tweet store answering at once."""
