"""The microblog: TWEET, LAST and TAGGED (also on a store answering at once), hashtags, the memory store."""

from __future__ import annotations

from twisted.internet.defer import succeed
from twisted.trial.unittest import TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from msgsvc.domain.microblog import hashtags
from msgsvc.store.interfaces import ITweetStore, Tweet
from msgsvc.store.memory import MemoryTweetStore
from tests.helpers import OnRedis, OnSqlite, TcpHarness, UdpHarness, make_broker
from tests.test_forum import answering_at_once

EMPTY = b"DATA 13 last\r\nEmpty Message\r\n"


class TweetTests(TestCase):
    """TWEET stores a message of at most 150 characters; LAST reads the most recent one."""

    def store_url(self) -> str:
        """The store under test: memory here, SQLite and Redis in the subclasses below."""
        return "memory"

    def setUp(self) -> None:
        self.broker = make_broker(store=self.store_url())
        self.addCleanup(self.broker.stores.close)
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

    store_url = TweetTests.store_url

    def setUp(self) -> None:
        self.broker = make_broker(store=self.store_url())
        self.addCleanup(self.broker.stores.close)
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


class SqliteTweetTests(OnSqlite, TweetTests):
    """TweetTests on the SQLite store."""


class SqliteTaggedTests(OnSqlite, TaggedTests):
    """TaggedTests on the SQLite store."""


class RedisTweetTests(OnRedis, TweetTests):
    """TweetTests on the Redis store."""


class RedisTaggedTests(OnRedis, TaggedTests):
    """TaggedTests on the Redis store."""
