"""Three twistd msgsvc processes on one Redis, as an operator runs them, behave as one server."""

from __future__ import annotations

import os
import sys

from twisted.internet import reactor, task
from twisted.trial.unittest import SkipTest, TestCase

from msgsvc.client.replies import ServerError
from tests.cluster_helpers import TWISTD, TwistdNode, connect
from tests.redis_server import RedisServer, start_redis


class ThreeNodesTests(TestCase):
    """Queues, names and WHO across three twistd nodes."""

    timeout = 60

    def setUp(self) -> None:
        if not os.path.exists(TWISTD):
            raise SkipTest(f"no twistd script beside {sys.executable}")

    async def start_node(self, server: RedisServer) -> int:
        return (await TwistdNode(self, server).start()).port

    async def client(self, port: int, events: list | None = None):
        return await connect(self, port, events)

    async def test_three_nodes_one_server(self) -> None:
        """A SEND on one node reaches a RECV waiting on another; names are unique; WHO lists all three nodes."""
        server = await start_redis(self)
        ports = [await self.start_node(server) for _ in range(3)]
        heard: list = []
        ann = await self.client(ports[0], heard)
        bob, cat = await self.client(ports[1]), await self.client(ports[2])
        waiting = bob.command("RECV", "@jobs", "5")
        await cat.command("SEND", "@jobs", payload=b"across")
        self.assertEqual((await waiting).payload, b"across")
        await ann.command("NAME", "ann")
        with self.assertRaises(ServerError) as taken:
            await bob.command("NAME", "ANN")
        self.assertEqual(taken.exception.args[0], "name-taken: ANN is already in use")
        await bob.command("NAME", "bob")
        await cat.command("NAME", "cat")
        for _ in range(20):  # presence may lag a little behind (the nodes write it on their own connections)
            who = (await ann.command("WHO")).payload.decode().splitlines()
            if len(who) == 3:
                break
            await task.deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(sorted(line.split()[0] for line in who), ["~ann", "~bob", "~cat"])
