"""Issue 14's black-box checks: three ``twistd -n msgsvc`` nodes on one real redis-server, seen only through TCP."""

from __future__ import annotations

import os
import sys
import time

from twisted.internet import defer
from twisted.trial.unittest import SkipTest, TestCase

from msgsvc.client.replies import Event, ServerError
from msgsvc.client.tcp import TcpClient
from tests.cluster_helpers import TWISTD, TwistdNode, connect, poll
from tests.redis_server import RedisServer, start_redis

TOTAL = 20_000


async def qstat(client: TcpClient, queue: str) -> dict[str, str]:
    """QSTAT of ``queue`` as a dict."""
    lines = (await client.command("QSTAT", queue)).payload.decode().splitlines()
    return dict(line.split(" ", 1) for line in lines)


def heard(events: list, name: str, args: str) -> bool:
    return Event(name, args) in events


class BlackBoxTests(TestCase):
    """Three real nodes on one real Redis behave as one server."""

    timeout = 60

    def setUp(self) -> None:
        if not os.path.exists(TWISTD):
            raise SkipTest(f"no twistd script beside {sys.executable}")

    async def nodes(self, server: RedisServer, *options: str) -> list[TwistdNode]:
        nodes = [TwistdNode(self, server, *options) for _ in range(3)]
        return list(await defer.gatherResults([defer.Deferred.fromCoroutine(node.start()) for node in nodes]))

    async def refused(self, command: defer.Deferred) -> ServerError:
        with self.assertRaises(ServerError) as caught:
            await command
        return caught.exception

    async def test_twenty_thousand_messages_exactly_once(self) -> None:
        """20,000 messages sent and received concurrently through all three nodes arrive exactly once."""
        nodes = await self.nodes(await start_redis(self))
        senders = [await connect(self, node.port) for node in nodes for _ in range(4)]
        receivers = [await connect(self, node.port) for node in nodes for _ in range(3)]
        got: list[bytes] = []

        async def send(client: TcpClient, first: int) -> None:
            for start in range(first, TOTAL, len(senders) * 100):  # pipelined, 100 at a time
                batch = range(start, min(start + 100, TOTAL))
                await defer.gatherResults([client.command("SEND", "@bulk", f"m{n:05}") for n in batch])

        async def receive(client: TcpClient) -> None:
            while len(got) < TOTAL:
                batch = [client.command("RECV", "@bulk") for _ in range(50)] + [client.command("RECV", "@bulk", "1")]
                for reply in await defer.DeferredList(batch, consumeErrors=True):
                    if reply[0]:
                        got.append(reply[1].payload)
                    else:
                        reply[1].trap(ServerError)

        started = time.monotonic()
        work = [send(client, n * 100) for n, client in enumerate(senders)] + [receive(c) for c in receivers]
        await defer.gatherResults([defer.Deferred.fromCoroutine(w) for w in work])
        elapsed = time.monotonic() - started
        self.assertEqual(len(got), TOTAL, f"{len(got) - len(set(got))} duplicates")
        self.assertEqual(set(got), {f"m{n:05}".encode() for n in range(TOTAL)})
        for client in receivers[::3]:  # one per node
            stats = await qstat(client, "@bulk")
            self.assertEqual((stats["ready"], stats["reserved"], stats["sent"]), ("0", "0", str(TOTAL)), stats)
        self.assertLess(elapsed, 40)

    async def test_reservation_of_killed_node_comes_back(self) -> None:
        """A node killed with SIGKILL gives back its reservation, its login and its clients' names within seconds."""
        a, b, c = await self.nodes(await start_redis(self), "--node-lease", "1", "--ttr", "30")
        on_a, on_b = await connect(self, a.port), await connect(self, b.port)
        watcher_events: list = []
        watcher = await connect(self, c.port, watcher_events)
        await watcher.command("NAME", "watcher")
        await on_a.command("REGISTER", "zed", "secret-pw-4")  # logged in, and named zed
        sent = await on_b.command("SEND", "@work", "job-1")
        taken = await on_a.command("RESERVE", "@work")
        self.assertEqual((taken.text, taken.payload), (sent.text.split()[0], b"job-1"))
        await a.stop("KILL")
        started = time.monotonic()
        again = await on_b.command("RESERVE", "@work", "5")
        self.assertEqual((again.text, again.payload), (taken.text, b"job-1"))
        self.assertLess(time.monotonic() - started, 5)
        await poll(lambda: heard(watcher_events, "LEAVE", "zed"))
        who = (await watcher.command("WHO")).payload.decode().splitlines()
        self.assertEqual([line.split()[0] for line in who], ["~watcher"])
        await on_b.command("LOGIN", "zed", "secret-pw-4")

    async def test_chat_forum_and_microblog_across_nodes(self) -> None:
        """Chat, single login, forum posts and files, and tweets span the three nodes."""
        a, b, c = await self.nodes(await start_redis(self))
        ann_events: list = []
        ann = await connect(self, a.port, ann_events)
        await ann.command("NAME", "ann")
        bob_events: list = []
        bob = await connect(self, b.port, bob_events)
        await bob.command("NAME", "bob")
        await poll(lambda: heard(ann_events, "JOIN", "bob"))
        await ann.command("SAY", "hello from A")
        await poll(lambda: heard(bob_events, "CHAT", "ann hello from A"))
        cat = await connect(self, c.port)
        await cat.command("NAME", "cat")
        cat.transport.loseConnection()
        await cat.disconnected
        await poll(lambda: heard(bob_events, "LEAVE", "cat") and heard(ann_events, "LEAVE", "cat"))

        alice = await connect(self, a.port)
        await alice.command("REGISTER", "alice", "secret-pw-1")
        alice_on_b = await connect(self, b.port)
        in_use = await self.refused(alice_on_b.command("LOGIN", "alice", "secret-pw-1"))
        self.assertEqual(in_use.code, "in-use")
        reader = await connect(self, b.port)
        await reader.command("REGISTER", "reader", "secret-pw-2")
        await alice.command("CRT", "general")
        await alice.command("MSG", "general", "first post")
        await alice.command("UPD", "general", "notes.txt", payload=b"small file\x00\xff\r\n")
        self.assertIn("general", (await reader.command("LST")).payload.decode().split())
        thread = (await reader.command("RDT", "general")).payload.decode().splitlines()
        self.assertEqual(thread, ["1 alice: first post", "alice uploaded notes.txt"])
        self.assertEqual((await reader.command("DWN", "general", "notes.txt")).payload, b"small file\x00\xff\r\n")

        follower_events: list = []
        follower = await connect(self, b.port, follower_events)
        await follower.command("FOLLOW", "#blackbox")
        posted = await alice.command("TWEET", "across nodes #blackbox")
        self.assertEqual((await reader.command("LAST")).payload, b"across nodes #blackbox")
        tagged = (await reader.command("TAGGED", "#blackbox")).payload.decode().splitlines()
        self.assertEqual(tagged, [f"{posted.text.split()[0]} alice across nodes #blackbox"])
        await poll(lambda: any(e.name == "TWEET" and "across nodes #blackbox" in e.args for e in follower_events))

    async def test_max_clients_counts_every_node(self) -> None:
        """With --max-clients 4, the fifth client on any node is refused as full."""
        nodes = await self.nodes(await start_redis(self), "--max-clients", "4")
        clients = [await connect(self, nodes[n % 3].port) for n in range(4)]

        async def fifth_refused(node: TwistdNode) -> bool:
            try:
                extra = await connect(self, node.port)
            except ServerError as refusal:
                return refusal.code == "full"
            extra.abort()
            await extra.disconnected
            return False

        for node in nodes:  # each node counts the others' clients at their next heartbeat (<= 1 s)
            await poll(lambda node=node: fifth_refused(node), seconds=5, step=0.2)
        self.assertFalse(any(client.disconnected.called for client in clients))

    async def test_restart_of_every_node_loses_nothing(self) -> None:
        """After all three nodes stop (SIGTERM) and start again, confirmed messages, accounts and posts remain."""
        server = await start_redis(self)
        nodes = await self.nodes(server)
        clients = [await connect(self, node.port) for node in nodes]
        for n in range(30):
            await clients[n % 3].command("SEND", "@kept", f"kept-{n}")
        await clients[0].command("REGISTER", "dora", "secret-pw-3")
        await clients[0].command("CRT", "kept")
        await clients[0].command("MSG", "kept", "still here")
        await clients[1].command("TWEET", "still tweeting #kept")
        await defer.gatherResults([node.stop("TERM") for node in nodes])
        again = [await connect(self, node.port) for node in await self.nodes(server)]
        await again[2].command("LOGIN", "dora", "secret-pw-3")
        self.assertEqual((await again[2].command("RDT", "kept")).payload.splitlines(), [b"1 dora: still here"])
        self.assertIn(b"still tweeting #kept", (await again[0].command("TAGGED", "#kept")).payload)
        received = [(await again[n % 3].command("RECV", "@kept")).payload for n in range(30)]
        self.assertEqual(received, [f"kept-{n}".encode() for n in range(30)])
        self.assertEqual((await self.refused(again[1].command("RECV", "@kept"))).code, "empty")
