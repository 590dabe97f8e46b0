"""Several nodes on one Redis behave as one server: leases and reaping, queues, chat and microblog across nodes."""

from __future__ import annotations

import time

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import TestCase

from msgsvc.dispatch.verbs.chat import name
from msgsvc.domain.broker import Broker
from msgsvc.domain.cluster import QueueReady, SingleNode, TweetNews, decode, encode
from msgsvc.domain.cluster_node import ReadyQueues
from msgsvc.domain.errors import NameTaken
from msgsvc.domain.events import Chat, Join, Leave, Tweet
from msgsvc.domain.microblog import ALL
from msgsvc.protocol.wire import Ok
from msgsvc.store.interfaces import Message
from tests.cluster_helpers import client, link_of, start_node, start_nodes, until
from tests.helpers import make_broker


class CodecTests(TestCase):
    """What nodes tell each other, as bytes."""

    def test_round_trip(self) -> None:
        """Every kind of notice comes back as it went, surrogate escapes included."""
        for notice in [
            QueueReady("jobs"),
            Chat("ann", "hi \udcff there"),
            Join("bob"),
            Leave("bob"),
            TweetNews(Tweet(7, "~ann", "hello #a"), frozenset({"a"})),
        ]:
            self.assertEqual(decode(encode(notice)), notice)

    def test_malformed(self) -> None:
        """Bytes that are no notice are refused with ValueError."""
        for data in [b"[]", b'["queue", 1]', b"nonsense", b'["tweet", "x", "a", "b", []]']:
            self.assertRaises(ValueError, decode, data)


class Told:
    """An ICluster that only records what it is told."""

    def __init__(self) -> None:
        self.notices: list[object] = []

    def tell(self, notice: object) -> None:
        self.notices.append(notice)


class ReadyQueuesTests(TestCase):
    """The other nodes hear that a queue got a message once per queue per reactor turn."""

    def test_once_per_queue_per_turn(self) -> None:
        """Three SENDs to two queues in a turn are two notices, in order, at its end; the next turn tells again."""
        clock, told = Clock(), Told()
        ready = ReadyQueues(told, clock)  # type: ignore[arg-type]  # a recorder stands in for the ICluster
        for queue in ("jobs", "mail", "jobs"):
            ready.announce(queue)
        self.assertEqual(told.notices, [])
        clock.advance(0)
        self.assertEqual(told.notices, [QueueReady("jobs"), QueueReady("mail")])
        ready.announce("jobs")
        clock.advance(0)
        self.assertEqual(told.notices, [QueueReady("jobs"), QueueReady("mail"), QueueReady("jobs")])


class SingleNodeTests(TestCase):
    """The memory and SQLite stores run one node alone, as before clustering."""

    def test_memory_store_is_single_node(self) -> None:
        """No link, no re-check, every claim granted, no other clients."""
        broker = make_broker()
        self.assertIsNone(broker.stores.cluster)
        self.assertIsInstance(broker.cluster, SingleNode)
        self.assertIsNone(broker.queues.announce)
        self.assertEqual(broker.cluster.other_clients(), 0)


class LeaseTests(TestCase):
    """Node ids, leases, and the reaping of nodes whose lease ran out."""

    timeout = 20

    async def test_registered_with_lease(self) -> None:
        """Each node has a random id, a lease key that expires within the lease, and is in the node set."""
        one, two = await start_nodes(self, 2, node_lease=3.0)
        link = link_of(one)
        self.assertNotEqual(link.node, link_of(two).node)
        redis = link._redis
        ttl = await redis.command("PTTL", f"msgsvc:node:{link.node}")
        self.assertTrue(0 < ttl <= 3000, ttl)
        nodes = await redis.command("SMEMBERS", "msgsvc:nodes")
        self.assertEqual(set(nodes), {link.node.encode(), link_of(two).node.encode()})

    async def test_dead_node_reaped(self) -> None:
        """A node whose heartbeat stops is reaped: its members leave everywhere, its names and logins are free."""
        alive, other = await start_nodes(self, 2, node_lease=1.5)  # heartbeats every 0.5 s: they reap by then
        dying = await start_node(self, link_of(alive)._redis.address, node_lease=0.5)
        ann, ann_hears = client(alive)
        await name(alive, ann, "ann")
        bob, bob_hears = client(other)
        await name(other, bob, "bob")
        carol, _ = client(dying)
        await name(dying, carol, "carol")
        self.assertEqual(set(await until(ann_hears, b"* JOIN carol")), {b"* JOIN bob"})
        self.assertIn(await until(bob_hears, b"* JOIN carol"), [[], [b"* JOIN ann"]])  # ann's may come late
        self.assertEqual(list(bob_hears.heard), [])
        self.assertTrue(await dying.cluster.claim_login(carol, "carol"))
        link_of(dying).beat.stop()  # as if the process were killed: no more heartbeats
        self.assertEqual(await ann_hears.event(), b"* LEAVE carol")
        self.assertEqual(await bob_hears.event(), b"* LEAVE carol")
        self.assertNotIn(link_of(dying).node.encode(), await link_of(alive)._redis.command("SMEMBERS", "msgsvc:nodes"))
        self.assertTrue(await alive.cluster.claim_login(ann, "carol"))
        await name(alive, ann, "carol")
        self.assertEqual(await bob_hears.event(), b"* LEAVE ann")
        self.assertEqual(await bob_hears.event(), b"* JOIN carol")

    async def test_dead_node_reservations_return(self) -> None:
        """A dead node's reservation comes back at its reaping: a RESERVE waiting on another node gets it."""
        alive = (await start_nodes(self, 1, node_lease=1.5))[0]
        dying = await start_node(self, link_of(alive)._redis.address, node_lease=0.5)
        await alive.queues.send("q", b"held")
        holder, _ = client(dying)
        held = await dying.queues.reserve(holder, "q", 0)
        assert isinstance(held, Message)
        waiting = alive.queues.reserve(client(alive)[0], "q", 5)
        link_of(dying).beat.stop()
        again = await waiting
        assert isinstance(again, Message)
        self.assertEqual((again.id, again.payload), (held.id, b"held"))

    async def stall(self, alive: Broker, stalled: Broker) -> None:
        """Stop ``stalled``'s heartbeat until ``alive`` has reaped it."""
        link = link_of(stalled)
        link.beat.stop()
        for _ in range(50):
            if link.node.encode() not in await link_of(alive)._redis.command("SMEMBERS", "msgsvc:nodes"):
                return
            await deferLater(reactor, 0.1, lambda: None)

    async def test_stalled_node_claims_again(self) -> None:
        """A node reaped while it stalled finds out at its next heartbeat and claims its clients' names again."""
        (alive,) = await start_nodes(self, 1, node_lease=1.5)
        stalled = await start_node(self, link_of(alive)._redis.address, node_lease=0.5)
        carol, carol_hears = client(stalled)
        await name(stalled, carol, "carol")
        await self.stall(alive, stalled)
        await link_of(stalled).heartbeat()  # it runs again, and claims again
        await link_of(stalled)._redis.command("PING")  # answered after the claims: Redis answers in order
        self.assertIsNone(carol_hears.closed_with)
        with self.assertRaises(NameTaken):
            await name(alive, client(alive)[0], "carol")

    async def test_stalled_node_closes_a_client_whose_name_went(self) -> None:
        """If another node took a stalled client's name meanwhile, that client is closed when its node resumes."""
        (alive,) = await start_nodes(self, 1, node_lease=1.5)
        stalled = await start_node(self, link_of(alive)._redis.address, node_lease=0.5)
        carol, carol_hears = client(stalled)
        await name(stalled, carol, "carol")
        await self.stall(alive, stalled)
        await name(alive, client(alive)[0], "carol")
        await link_of(stalled).heartbeat()
        await link_of(stalled)._redis.command("PING")  # answered after the claims: Redis answers in order
        self.assertEqual(carol_hears.closed_with, "node-lease-lost")

    async def test_clean_stop_frees_claims(self) -> None:
        """A node whose stores close releases its names and registration at once."""
        one, two = await start_nodes(self, 2)
        ann, _ = client(two)
        await name(two, ann, "ann")
        await two.shutdown()
        await two.stores.close()
        bob, _ = client(one)
        self.assertEqual(await name(one, bob, "ann"), Ok("Your name is set as: ann"))


class QueueTests(TestCase):
    """A waiting RECV on one node is served by a SEND on another."""

    timeout = 20

    async def test_send_wakes_receiver_elsewhere(self) -> None:
        """RECV @q 5 waiting on node A gets the message of a SEND @q on node B well within 100 ms."""
        a, b = await start_nodes(self, 2)
        receiver, _ = client(a)
        waiting = a.queues.receive(receiver, "q", 5)
        self.assertIsInstance(waiting, Deferred)
        started = time.monotonic()
        await b.queues.send("q", b"hello")
        message = await waiting
        self.assertLess(time.monotonic() - started, 0.1)
        self.assertIsInstance(message, Message)
        assert isinstance(message, Message)
        self.assertEqual(message.payload, b"hello")

    async def test_lost_notice_rechecked(self) -> None:
        """A receiver whose node missed the notice (its listening connection down) is served within a second."""
        a, b = await start_nodes(self, 2)
        link = link_of(a)
        assert link.subscription is not None
        await link.subscription.close()
        receiver, _ = client(a)
        waiting = a.queues.receive(receiver, "q", 5)
        started = time.monotonic()
        await b.queues.send("q", b"late")
        message = await waiting
        self.assertLess(time.monotonic() - started, 1.5)
        assert isinstance(message, Message)
        self.assertEqual(message.payload, b"late")

    async def test_one_message_one_receiver(self) -> None:
        """Receivers waiting on three nodes: two messages reach two of them, each once."""
        nodes = await start_nodes(self, 3)
        waits = [node.queues.receive(client(node)[0], "q", 0.5) for node in nodes]
        await nodes[0].queues.send("q", b"1")
        await nodes[0].queues.send("q", b"2")
        got = [await wait for wait in waits]
        payloads = sorted(message.payload for message in got if isinstance(message, Message))
        self.assertEqual(payloads, [b"1", b"2"])


class ChatTests(TestCase):
    """SAY, JOIN, LEAVE and tweets reach every node; names are unique across nodes."""

    timeout = 20

    async def test_say_join_leave_across_nodes(self) -> None:
        """Members on either node hear each other's JOIN, CHAT and LEAVE, each once."""
        a, b = await start_nodes(self, 2)
        ann, ann_hears = client(a)
        await name(a, ann, "ann")
        bob, bob_hears = client(b)
        await name(b, bob, "bob")
        self.assertEqual(await ann_hears.event(), b"* JOIN bob")
        b.chat.say(bob, "hi ann")
        self.assertEqual(await ann_hears.event(), b"* CHAT bob hi ann")
        a.chat.say(ann, "hi bob")
        self.assertIn(await until(bob_hears, b"* CHAT ann hi bob"), [[], [b"* JOIN ann"]])  # ann's JOIN may come late
        a.close_session(ann)
        self.assertEqual(await bob_hears.event(), b"* LEAVE ann")
        self.assertEqual(list(ann_hears.heard) + list(bob_hears.heard), [])

    async def test_name_unique_across_nodes(self) -> None:
        """A name held on one node is refused on another, in any case, until it is released."""
        a, b = await start_nodes(self, 2)
        ann, _ = client(a)
        await name(a, ann, "ann")
        other, _ = client(b)
        with self.assertRaises(NameTaken):
            await name(b, other, "ANN")
        await name(a, ann, "Ann")  # its own name in another case
        await name(a, ann, "anne")  # renaming frees the old one
        self.assertEqual(await name(b, other, "ann"), Ok("Your name is set as: ann"))
        with self.assertRaises(NameTaken):
            await name(a, ann, "ann")

    async def test_tweet_reaches_followers_everywhere(self) -> None:
        """A tweet posted on one node reaches the followers on both, each once; not its author."""
        a, b = await start_nodes(self, 2)
        far, far_hears = client(a)
        near, near_hears = client(b)
        author, author_hears = client(b)
        a.microblog.follow(far, "news")
        b.microblog.follow(near, ALL)
        b.microblog.follow(author, ALL)
        tweet_id = await b.microblog.post(author, "out now #news")
        line = b"* TWEET %d anonymous out now #news" % tweet_id
        self.assertEqual(await far_hears.event(), line)
        self.assertEqual(await near_hears.event(), line)
        await b.queues.send("sync", b"x")  # a round trip through the channel: any duplicate would be here by now
        self.assertEqual(list(far_hears.heard) + list(near_hears.heard) + list(author_hears.heard), [])
