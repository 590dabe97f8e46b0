"""WHO, STATUS and --max-clients see the clients of every node."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from msgsvc.dispatch.verbs.chat import name, status, who
from msgsvc.domain.broker import Broker
from msgsvc.domain.session import Session
from tests.cluster_helpers import Listener, client, link_of, start_nodes


async def lines(broker: Broker, session: Session, verb=who, after: Broker | None = None) -> list[str]:
    """A WHO (or STATUS) reply's lines, once what node ``after`` sent to Redis is there."""
    if after is not None:
        await link_of(after).heartbeat()  # its connection's earlier commands are done by its reply
    reply = await verb(broker, session)
    return reply.payload.decode().splitlines()


class PresenceTests(TestCase):
    """Every node lists every node's clients; the cap counts them all."""

    timeout = 20

    async def test_who_lists_every_node(self) -> None:
        """WHO on either node lists the named clients of both; renames and departures show at once."""
        a, b = await start_nodes(self, 2)
        ann, _ = client(a, 40001)
        await name(a, ann, "ann")
        bob, _ = client(b, 40002)
        await name(b, bob, "bob")
        client(b, 40003)  # unnamed: not in WHO
        expected = ["~ann tcp 127.0.0.1:40001", "~bob tcp 127.0.0.1:40002"]
        self.assertEqual(await lines(a, ann, after=b), expected)
        self.assertEqual(sorted(await lines(b, bob, after=a)), expected)
        await name(b, bob, "rob")
        self.assertEqual(await lines(a, ann, after=b), ["~ann tcp 127.0.0.1:40001", "~rob tcp 127.0.0.1:40002"])
        b.close_session(bob)
        self.assertEqual(await lines(a, ann, after=b), ["~ann tcp 127.0.0.1:40001"])

    async def test_status_lists_every_node(self) -> None:
        """STATUS lists the clients of every node by ids unique across nodes, the same on either node."""
        a, b = await start_nodes(self, 2)
        ann, _ = client(a, 40001)
        bob, _ = client(b, 40002)
        await name(b, bob, "bob")
        b.chat.say(bob, "hi")
        found = await lines(a, ann, status, after=b)
        tag_a, tag_b = link_of(a).node[:6], link_of(b).node[:6]
        self.assertEqual(len(found), 2)
        self.assertTrue(found[0].startswith(f"{tag_a}.1 - tcp 127.0.0.1:40001 opened="), found)
        self.assertTrue(found[1].startswith(f"{tag_b}.1 ~bob tcp 127.0.0.1:40002 opened="), found)
        self.assertTrue(found[1].endswith(" closed=- sent=1"), found)
        self.assertEqual(await lines(b, bob, status, after=a), [found[1], found[0]])

    async def test_max_clients_counts_every_node(self) -> None:
        """--max-clients 2: a client on each node fills the server; a third is refused on either node."""
        a, b = await start_nodes(self, 2, max_clients=2)
        client(a)
        client(b)
        for node in (a, b, a):  # each node's listing is written, then each counts the other's
            await link_of(node).heartbeat()
        self.assertIsNone(a.open_session(Listener()))
        self.assertIsNone(b.open_session(Listener()))
