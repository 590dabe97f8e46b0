"""The Redis connection's protocol: commands and replies in order, one reply timer, failures that never hang."""

from __future__ import annotations

import txredisapi
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred, DeferredList, gatherResults
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from msgsvc.store.redis_connection import Redis, Script, parse_url
from msgsvc.store.redis_protocol import RedisProtocol, bulk, pack
from msgsvc.store.redis_pubsub import Listener
from tests.redis_server import start_redis

TIMEOUT = 10.0


def connect(db: int = 2) -> tuple[RedisProtocol, StringTransport, Clock]:
    """A protocol on a fake transport, its database selected (Redis said OK)."""
    clock = Clock()
    protocol = RedisProtocol(db, clock, TIMEOUT)
    transport = StringTransport()
    protocol.makeConnection(transport)
    assert transport.value() == pack(("SELECT", db))
    protocol.dataReceived(b"+OK\r\n")
    transport.clear()
    return protocol, transport, clock


def outcome(answer: Deferred) -> list[object]:
    """What ``answer`` has fired with so far: [] while waiting, [value] or [Failure]."""
    fired: list[object] = []
    answer.addBoth(fired.append)
    return fired


class PackTests(TestCase):
    """Commands as RESP, built as txredisapi builds them."""

    def test_pack(self) -> None:
        """Bytes as they are, text as UTF-8, numbers as text (floats with six decimals, as txredisapi)."""
        packed = pack(("SET", "k\u00e9", b"v\r\n", 3, 1.5))
        self.assertEqual(packed, b"*5\r\n$3\r\nSET\r\n$3\r\nk\xc3\xa9\r\n$3\r\nv\r\n\r\n$1\r\n3\r\n$8\r\n1.500000\r\n")
        self.assertEqual(bulk([]), b"")

    def test_script_call(self) -> None:
        """A script's call is EVALSHA with its SHA1, no keys, and the arguments; its load is SCRIPT LOAD."""
        script = Script("return 1")
        self.addCleanup(Script.every.remove, script)
        self.assertEqual(script.call(("a", 2)), pack(("EVALSHA", script.sha, 0, "a", 2)))
        self.assertEqual(script.load, pack(("SCRIPT", "LOAD", "return 1")))


class OrderTests(TestCase):
    """Every command is written at once; replies answer the commands in the order they were sent."""

    def test_replies_in_order(self) -> None:
        """Replies, however split, fire the commands' Deferreds in order, each with its own reply."""
        protocol, transport, _ = connect()
        answers = [protocol.send(pack(("GET", name))) for name in ("a", "b", "c", "d")]
        self.assertEqual(transport.value(), b"".join(pack(("GET", name)) for name in ("a", "b", "c", "d")))
        fired = [outcome(answer) for answer in answers]
        data = b":1\r\n$3\r\nabc\r\n$-1\r\n*2\r\n:7\r\n$1\r\nx\r\n"
        for byte in range(len(data)):
            protocol.dataReceived(data[byte : byte + 1])
        self.assertEqual(fired, [[1], [b"abc"], [None], [[7, b"x"]]])
        self.assertEqual(protocol.waiting, type(protocol.waiting)())

    def test_error_reply(self) -> None:
        """An error reply fails its command with ResponseError; the next command gets the next reply."""
        protocol, _, _ = connect()
        failed, answered = outcome(protocol.send(b"x")), outcome(protocol.send(b"y"))
        protocol.dataReceived(b"-WRONGTYPE no\r\n+OK\r\n")
        failed[0].trap(txredisapi.ResponseError)
        self.assertEqual((str(failed[0].value), answered), ("WRONGTYPE no", [b"OK"]))

    def test_convert(self) -> None:
        """``convert`` makes the reply the answer; if it raises, that command alone fails with its error."""
        protocol, _, _ = connect()
        doubled = outcome(protocol.send(b"x", convert=lambda reply: reply * 2))
        broken = outcome(protocol.send(b"y", convert=lambda reply: 1 / 0))
        plain = outcome(protocol.send(b"z"))
        protocol.dataReceived(b":21\r\n:1\r\n:3\r\n")
        self.assertEqual(doubled, [42])
        broken[0].trap(ZeroDivisionError)
        self.assertEqual(plain, [3])

    def test_cancelled(self) -> None:
        """A command cancelled by its caller has its reply dropped; the next still gets its own."""
        protocol, _, _ = connect()
        first, second = protocol.send(b"x"), outcome(protocol.send(b"y"))
        first.cancel()
        self.assertFailure(first, CancelledError)
        protocol.dataReceived(b":1\r\n:2\r\n")
        self.assertEqual(second, [2])

    def test_noscript(self) -> None:
        """NOSCRIPT: the script is loaded and its call sent again, once; the caller gets the second answer."""
        protocol, transport, _ = connect()
        answer = outcome(protocol.send(b"CALL", load=b"LOAD"))
        other = outcome(protocol.send(b"OTHER"))
        transport.clear()
        protocol.dataReceived(b"-NOSCRIPT No matching script.\r\n:1\r\n")
        self.assertEqual((transport.value(), answer, other), (b"LOADCALL", [], [1]))
        protocol.dataReceived(b"$3\r\nsha\r\n:9\r\n")
        self.assertEqual(answer, [9])
        again = outcome(protocol.send(b"CALL", load=b"LOAD"))
        protocol.dataReceived(b"-NOSCRIPT No matching script.\r\n$3\r\nsha\r\n-NOSCRIPT No matching script.\r\n")
        again[0].trap(txredisapi.ResponseError)


class FailureTests(TestCase):
    """A lost connection or a reply that does not come fails every waiting command."""

    def test_connection_lost(self) -> None:
        """Every command waiting fails with ConnectionError; a command after that raises it; no timer is left."""
        protocol, _, clock = connect()
        fired = [outcome(protocol.send(b"x")) for _ in range(3)]
        protocol.connectionLost(Failure(ConnectionDone()))
        for failed in fired:
            failed[0].trap(txredisapi.ConnectionError)
        self.assertRaises(txredisapi.ConnectionError, protocol.send, b"y")
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_reply_timeout(self) -> None:
        """TIMEOUT seconds after the oldest waiting command was sent, everything waiting fails and the
        connection is dropped."""
        protocol, transport, clock = connect()
        first = outcome(protocol.send(b"x"))
        clock.advance(6)
        second = outcome(protocol.send(b"y"))
        clock.advance(TIMEOUT - 6 - 1)
        self.assertEqual((first, second, transport.disconnecting), ([], [], False))
        clock.advance(1)
        for failed in (first, second):
            failed[0].trap(txredisapi.TimeoutError)
        self.assertTrue(transport.disconnected)

    def test_timeout_per_command(self) -> None:
        """Each command has its TIMEOUT seconds from when it was sent, with one timer for the connection."""
        protocol, transport, clock = connect()
        first = outcome(protocol.send(b"x"))
        clock.advance(6)
        second = outcome(protocol.send(b"y"))
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        clock.advance(3)
        protocol.dataReceived(b":1\r\n")
        clock.advance(TIMEOUT - 3 - 1)
        self.assertEqual((first, second, transport.disconnecting), ([1], [], False))
        clock.advance(1)
        second[0].trap(txredisapi.TimeoutError)

    def test_idle_connection_keeps_no_timer(self) -> None:
        """Once every command is answered, the timer ends at its next check and starts again with the next one."""
        protocol, transport, clock = connect()
        protocol.send(b"x")
        protocol.dataReceived(b":1\r\n")
        clock.advance(TIMEOUT)
        self.assertEqual(clock.getDelayedCalls(), [])
        later = outcome(protocol.send(b"y"))
        clock.advance(TIMEOUT)
        later[0].trap(txredisapi.TimeoutError)
        self.assertTrue(transport.disconnected)


class ListenerTests(TestCase):
    """The subscriber connection hands each published message to its listener."""

    def test_messages_and_confirmation(self) -> None:
        """A message, however split, reaches ``heard``; SUBSCRIBE's confirmation answers the subscribe."""
        listener = Listener(charset=None)
        heard: list[bytes] = []
        listener.heard = heard.append
        listener.makeConnection(StringTransport())
        subscribed = outcome(listener.subscribe([b"ch"]))
        data = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\na b\r\n"
        for byte in range(len(data)):
            listener.dataReceived(data[byte : byte + 1])
        self.assertEqual((subscribed, heard), ([[b"subscribe", b"ch", 1]], [b"a b"]))


class RealRedisTests(TestCase):
    """The protocol on a real redis-server."""

    timeout = 30

    async def test_pipelined_in_order(self) -> None:
        """Thousands of commands and scripts sent without waiting are run and answered in call order."""
        server = await start_redis(self)
        redis = Redis(parse_url(server.url()), reactor)
        self.addCleanup(redis.close)
        script = Script("return redis.call('INCR', 'n') * tonumber(ARGV[1])")
        self.addCleanup(Script.every.remove, script)
        answers = []
        for count in range(3000):
            answers.append(redis.run(script, 10) if count % 3 else redis.command("INCR", "n"))
        replies = await gatherResults(answers)
        self.assertEqual(replies, [(n + 1) * (10 if n % 3 else 1) for n in range(3000)])

    async def test_lost_with_commands_in_flight(self) -> None:
        """Redis gone while commands wait behind a blocked one: every one of them fails, none hangs."""
        server = await start_redis(self)
        redis = Redis(parse_url(server.url()), reactor)
        self.addCleanup(redis.close)
        await redis.command("PING")
        waiting = [redis.command("BLPOP", "nothing", 0)] + [redis.command("INCR", "n") for _ in range(100)]
        fired = [outcome(answer) for answer in waiting]
        await server.stop()
        await DeferredList(waiting, consumeErrors=True)
        for failed in fired:
            failed[0].trap(txredisapi.ConnectionError)
