"""One login per account across nodes, and accounts owning their names across nodes."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from msgsvc.dispatch.verbs.chat import name
from msgsvc.domain.errors import InUse
from tests.cluster_helpers import client, link_of, start_node, start_nodes, until


class LoginTests(TestCase):
    """LOGIN and REGISTER claim the account in Redis; logging out, leaving and dying release it."""

    timeout = 20

    async def test_one_login_per_account(self) -> None:
        """An account logged in on one node is refused on another with the usual text until its client leaves."""
        a, b = await start_nodes(self, 2, password_cost=1)
        first, _ = client(a)
        await a.forum.accounts.register(first, "erin", "secret")
        second, _ = client(b)
        with self.assertRaises(InUse) as refused:
            await b.forum.accounts.login(second, "erin", "secret")
        self.assertEqual(str(refused.exception), "erin has already logged in")
        a.close_session(first)
        self.assertEqual(await b.forum.accounts.login(second, "ERIN", "secret"), "erin")

    async def test_dead_node_frees_login(self) -> None:
        """The login of a client of a node whose lease ran out is free again."""
        a = (await start_nodes(self, 1, password_cost=1, node_lease=1.5))[0]
        dying = await start_node(self, link_of(a)._redis.address, password_cost=1, node_lease=0.5)
        gone, _ = client(dying)
        await dying.forum.accounts.register(gone, "erin", "secret")
        watcher, hears = client(a)
        await name(a, watcher, "wat")
        link_of(dying).beat.stop()
        self.assertIn(await until(hears, b"* LEAVE erin"), [[], [b"* JOIN erin"]])  # erin's JOIN may come late
        again, _ = client(a)
        self.assertEqual(await a.forum.accounts.login(again, "erin", "secret"), "erin")

    async def test_account_takes_name_from_guest_elsewhere(self) -> None:
        """Registering takes the account's name from a guest of another node; its members hear LEAVE, then JOIN."""
        a, b = await start_nodes(self, 2, password_cost=1)
        guest, guest_hears = client(b)
        await name(b, guest, "erin")
        watcher, watcher_hears = client(b)
        await name(b, watcher, "wat")
        self.assertEqual(await guest_hears.event(), b"* JOIN wat")
        owner, _ = client(a)
        await a.forum.accounts.register(owner, "erin", "secret")
        self.assertEqual(await guest_hears.event(), b"* LEAVE erin")
        self.assertIsNone(guest.name)
        self.assertEqual(await watcher_hears.event(), b"* LEAVE erin")
        self.assertEqual(await watcher_hears.event(), b"* JOIN erin")
        self.assertEqual(a.chat.named("erin"), owner)
        self.assertIsNone(b.chat.named("erin"))
        self.assertFalse(await b.cluster.claim_name(watcher, "erin"))
