"""The Redis stores' own behaviour: their URL, opening, a Redis lost and back, and twistd msgsvc on Redis."""

from __future__ import annotations

import os
import signal
import sys
import time

import txredisapi
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SkipTest, TestCase

from msgsvc.client import connect_tcp
from msgsvc.client.replies import ServerError
from msgsvc.store import StoreError, check_store_url, open_stores
from msgsvc.store.interfaces import Immediate
from msgsvc.store.redis_connection import CONNECT_WAIT, RETRY_DELAY, RETRY_JITTER, RETRY_POLICY, Address, parse_url
from msgsvc.store.redis_files import CHUNK
from msgsvc.store.redis_queues import COUNTERS, COUNTERS_KEPT
from msgsvc.store.registry import Stores
from tests.helpers import CHECKOUT_ENV, temp_dir
from tests.redis_server import RedisServer, free_port, start_redis
from tests.test_twistd import _Twistd

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


class UrlTests(TestCase):
    """redis://HOST:PORT/DB names the Redis; anything else of the scheme is refused in one line."""

    def test_well_formed(self) -> None:
        """Host, port and database, with the defaults 6379 and 0; an IPv6 host in brackets."""
        self.assertEqual(parse_url("redis://127.0.0.1:7000/3"), Address("127.0.0.1", 7000, 3))
        self.assertEqual(parse_url("redis://cache.local"), Address("cache.local", 6379, 0))
        self.assertEqual(parse_url("redis://[::1]:7000/1"), Address("::1", 7000, 1))
        self.assertEqual(str(Address("::1", 7000, 1)), "[::1]:7000/1")
        check_store_url("redis://127.0.0.1:6379/0")

    def test_malformed(self) -> None:
        """A malformed redis URL gets a one-line StoreError that shows the form."""
        for url in ["redis://", "redis://h:port/0", "redis://h:70000/0", "redis://h:1/x", "redis://a/b/c"]:
            error = self.assertRaises(StoreError, check_store_url, url)
            self.assertEqual(str(error), f"malformed Redis store URL {url!r}; use redis://HOST:PORT/DB")

    def test_unreachable_at_open(self) -> None:
        """Opening stores on a Redis nobody runs fails at once with the reason."""
        port = free_port()
        started = time.monotonic()
        error = self.assertRaises(StoreError, open_stores, f"redis://127.0.0.1:{port}/0", reactor)
        self.assertEqual(str(error), f"cannot reach Redis at 127.0.0.1:{port}/0: Connection refused")
        self.assertLess(time.monotonic() - started, 3)


class RetryTests(TestCase):
    """How soon the connection tries again after Redis went away."""

    def test_back_within_the_connect_wait(self) -> None:
        """Every delay between attempts, its random part included, leaves a command time to see Redis back."""
        delays = [RETRY_POLICY(attempt) for attempt in range(50) for _ in range(20)]
        self.assertGreaterEqual(min(delays), RETRY_DELAY[0])
        self.assertLessEqual(max(delays), RETRY_DELAY[1] + RETRY_JITTER)
        self.assertLess(RETRY_DELAY[1] + RETRY_JITTER, CONNECT_WAIT / 1.5)


class ConnectionTests(TestCase):
    """The stores over a real Redis that goes away and comes back."""

    timeout = 30

    async def open(self, server: RedisServer, db: int = 0) -> Stores:
        stores = open_stores(server.url(db), reactor)
        self.addCleanup(stores.close)
        return stores

    async def test_durability_is_redis_acknowledging(self) -> None:
        """Replies wait only for the store's answer, which comes with Redis's acknowledgement."""
        stores = await self.open(await start_redis(self))
        self.assertIsInstance(stores.durability, Immediate)

    async def test_databases_are_separate(self) -> None:
        """Two database numbers of one Redis are two separate sets of stores."""
        server = await start_redis(self)
        one, two = await self.open(server, 0), await self.open(server, 1)
        await one.queues.enqueue("q", b"x", 1.0)
        self.assertEqual(await two.queues.depths(), [])
        self.assertEqual(await one.queues.depths(), [("q", 1)])

    async def test_database_out_of_range(self) -> None:
        """A database number the Redis does not have is refused at open with Redis's reason."""
        server = await start_redis(self)
        error = self.assertRaises(StoreError, open_stores, server.url(99), reactor)
        self.assertEqual(
            str(error), f"Redis at 127.0.0.1:{server.port}/99 refused msgsvc: ERR DB index is out of range"
        )

    async def test_password_required(self) -> None:
        """A Redis that wants a password refuses msgsvc at open, with Redis's reason on one line."""
        server = await start_redis(self)
        stores = await self.open(server)
        await stores.queues._redis.command("CONFIG", "SET", "requirepass", "secret")
        error = self.assertRaises(StoreError, open_stores, server.url(), reactor)
        self.assertEqual(
            str(error), f"Redis at 127.0.0.1:{server.port}/0 refused msgsvc: NOAUTH Authentication required."
        )

    async def test_scripts_reloaded(self) -> None:
        """After SCRIPT FLUSH (or a Redis restart) a script is loaded again and runs."""
        server = await start_redis(self)
        stores = await self.open(server)
        await stores.queues.enqueue("q", b"a", 1.0)
        await stores.queues._redis.command("SCRIPT", "FLUSH")
        await stores.queues.enqueue("q", b"b", 1.0)
        self.assertEqual([(await stores.queues.dequeue("q", 2.0)).payload for _ in range(2)], [b"a", b"b"])

    async def test_counters_shared(self) -> None:
        """stats carries the queue's counters as both instances changed them; a received message given back uncounts."""
        server = await start_redis(self)
        one, two = await self.open(server), await self.open(server)
        self.assertEqual((await one.queues.stats("q", 1.0)).counters, dict.fromkeys(COUNTERS, 0))
        for node in (one, two, one):
            await node.queues.enqueue("q", b"m", 1.0)
        await two.queues.give_back("q", await two.queues.dequeue("q", 1.0))
        reserved = await one.queues.reserve("q", 1.0)
        await one.queues.release(reserved.id, 1.0)
        await two.queues.acknowledge((await two.queues.reserve("q", 2.0)).id)
        held = await two.queues.reserve("q", 2.0)
        await two.queues.unreserve(held.id)
        counted = {"sent": 3, "received": 2, "acked": 1, "redelivered": 1}
        self.assertEqual((await one.queues.stats("q", 2.0)).counters, counted)
        ttl = await one.queues._redis.command("TTL", "msgsvc:counters:q")
        self.assertTrue(0 < ttl <= COUNTERS_KEPT)

    async def test_files_in_chunks(self) -> None:
        """A kept file is a list of chunks of at most CHUNK bytes; an unfinished copy would expire."""
        server = await start_redis(self)
        stores = await self.open(server)
        part = stores.files.begin()
        part.write(b"x" * (2 * CHUNK + 5))
        key = await stores.files.keep(part)
        redis = stores.queues._redis
        lengths = [len(chunk) for chunk in await redis.command("LRANGE", f"msgsvc:blob:{key}", 0, -1)]
        self.assertEqual(lengths, [CHUNK, CHUNK, 5])
        self.assertEqual(await redis.command("TTL", f"msgsvc:blob:{key}"), -1)
        self.assertEqual(await redis.command("HGET", "msgsvc:blobs", key), b"%d" % (2 * CHUNK + 5))

    async def test_redis_lost_and_back(self) -> None:
        """With Redis gone operations fail within seconds, never hang; once it is back they work again."""
        server = await start_redis(self)
        stores = await self.open(server)
        await stores.queues.enqueue("q", b"before", 1.0)
        await server.stop()
        for operation in [
            lambda: stores.queues.enqueue("q", b"lost", 1.0),
            lambda: stores.accounts.get_account("ann"),
            lambda: stores.forum.titles(),
        ]:
            started = time.monotonic()
            with self.assertRaises(txredisapi.ConnectionError):
                await operation()
            self.assertLess(time.monotonic() - started, CONNECT_WAIT + 1)
        await server.start()
        created, titles = stores.forum.create_thread("t", "ann"), stores.forum.titles()  # a script, then a command
        self.assertEqual((await created, await titles), (True, ["t"]))  # on a new, empty Redis
        self.assertEqual(await stores.queues.enqueue("q", b"after", 1.0), 1)
        self.assertEqual((await stores.queues.dequeue("q", 2.0)).payload, b"after")


class TwistdOnRedisTests(TestCase):
    """twistd -n msgsvc --store redis://... as an operator runs it."""

    timeout = 60

    def setUp(self) -> None:
        if not os.path.exists(TWISTD):
            raise SkipTest(f"no twistd script beside {sys.executable}")

    async def start_msgsvc(self, server: RedisServer) -> tuple[_Twistd, int]:
        process = _Twistd()
        args = [TWISTD, "-n", "--pidfile=", "msgsvc", "--port", "0", "--store", server.url()]
        transport = reactor.spawnProcess(process, TWISTD, args, env=CHECKOUT_ENV, path=temp_dir(self))
        process.transport = transport

        async def stop() -> None:
            if not process.ended.called:
                transport.signalProcess("KILL")
                await process.ended

        self.addCleanup(lambda: Deferred.fromCoroutine(stop()))
        return process, await process.started

    async def client(self, port: int):
        client = await connect_tcp(reactor, "127.0.0.1", port, lambda event: None)
        self.addCleanup(lambda: client.disconnected.called or client.abort())
        return client

    async def test_send_recv_restart_and_redis_lost(self) -> None:
        """SEND and RECV on two connections; messages outlive msgsvc; a lost Redis answers ERR internal, then heals."""
        server = await start_redis(self)
        process, port = await self.start_msgsvc(server)
        sender, receiver = await self.client(port), await self.client(port)
        self.assertEqual((await sender.command("SEND", payload=b"one")).text, "1 queued 3 bytes")
        self.assertEqual((await sender.command("SEND", payload=b"two")).text, "2 queued 3 bytes")
        self.assertEqual((await receiver.command("RECV")).payload, b"one")
        await sender.command("SEND", payload=b"three")
        self.assertEqual((await receiver.command("RESERVE")).payload, b"two")  # released when msgsvc stops
        process.transport.signalProcess("TERM")
        self.assertIn(await process.ended, [(0, None), (None, signal.SIGTERM)])
        self.assertNotIn(b"Traceback", process.output, process.output.decode())

        process, port = await self.start_msgsvc(server)
        client = await self.client(port)
        self.assertEqual([(await client.command("RECV")).payload for _ in range(2)], [b"two", b"three"])
        await server.stop()
        with self.assertRaises(ServerError) as raised:
            await client.command("SEND", payload=b"lost")
        self.assertEqual(raised.exception.args[0].split(":")[0], "internal")
        await server.start()
        self.assertEqual((await client.command("SEND", payload=b"back")).text, "1 queued 4 bytes")
        self.assertEqual((await client.command("RECV")).payload, b"back")

    async def test_two_nodes_share_queues_accounts_and_files(self) -> None:
        """Two msgsvc processes on one Redis: a message sent to one is received on the other; a file too."""
        server = await start_redis(self)
        (_, one), (_, two) = await self.start_msgsvc(server), await self.start_msgsvc(server)
        alice, bob = await self.client(one), await self.client(two)
        await alice.command("SEND", "@jobs", payload=b"for anyone")
        self.assertEqual((await bob.command("RECV", "@jobs")).payload, b"for anyone")
        figures = (await alice.command("QSTAT", "@jobs")).payload.decode().splitlines()
        self.assertEqual(figures[:4], ["ready 0", "reserved 0", "sent 1", "received 1"])
        await alice.command("REGISTER", "alice", "s3cret")
        with self.assertRaises(ServerError):
            await bob.command("REGISTER", "ALICE", "other")
        await bob.command("REGISTER", "bob", "pw")
        await alice.command("CRT", "demo")
        data = bytes(range(256)) * 4096 + b"end"
        await alice.command("UPD", "demo", "big.bin", payload=data)
        await bob.command("MSG", "demo", "thanks")
        downloaded = await bob.command("DWN", "demo", "big.bin")
        self.assertEqual(downloaded.payload, data)
        self.assertIn(b"thanks", (await alice.command("RDT", "demo")).payload)

    async def test_unreachable_redis_stops_the_start(self) -> None:
        """With no Redis at the URL, twistd msgsvc exits non-zero with one line naming it."""
        port = free_port()
        args = ["-n", "--pidfile=", "msgsvc", "--port", "0", "--store", f"redis://127.0.0.1:{port}/0"]
        _, err, code = await getProcessOutputAndValue(
            TWISTD, args, env=CHECKOUT_ENV, path=temp_dir(self), reactor=reactor
        )
        self.assertNotEqual(code, 0)
        self.assertEqual(err.decode(), f"msgsvc: cannot reach Redis at 127.0.0.1:{port}/0: Connection refused\n")
