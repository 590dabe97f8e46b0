"""Three twistd msgsvc processes on one Redis, as an operator runs them, behave as one server."""

from __future__ import annotations

import os
import sys

from twisted.internet import reactor, task
from twisted.trial.unittest import SkipTest, TestCase

from msgsvc.client import connect_tcp
from msgsvc.client.replies import ServerError
from tests.helpers import CHECKOUT_ENV, temp_dir
from tests.redis_server import RedisServer, start_redis
from tests.test_twistd import _Twistd

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


class ThreeNodesTests(TestCase):
    """Queues, names and WHO across three twistd nodes."""

    timeout = 60

    def setUp(self) -> None:
        if not os.path.exists(TWISTD):
            raise SkipTest(f"no twistd script beside {sys.executable}")

    async def start_node(self, server: RedisServer) -> int:
        process = _Twistd()
        args = [TWISTD, "-n", "--pidfile=", "msgsvc", "--port", "0", "--max-clients", "0", "--store", server.url()]
        transport = reactor.spawnProcess(process, TWISTD, args, env=CHECKOUT_ENV, path=temp_dir(self))

        def stop() -> object:
            if process.ended.called:
                return None
            transport.signalProcess("TERM")
            return process.ended

        self.addCleanup(stop)
        return await process.started

    async def client(self, port: int, events: list | None = None):
        client = await connect_tcp(reactor, "127.0.0.1", port, (events if events is not None else []).append)
        self.addCleanup(lambda: client.disconnected.called or client.abort())
        return client

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
