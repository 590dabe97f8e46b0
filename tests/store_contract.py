"""What every kind of store promises, as test bodies each kind's TestCase runs (see test_store_contract).

The tests run on the real reactor, awaiting each answer, whether the store
gives it at once or later. ``open`` gives a store instance; for a shared store
(Redis) ``open`` twice gives two instances on the same state, as two msgsvc
processes have: the tests about several nodes run only there.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from twisted.internet.defer import DeferredList
from twisted.trial.unittest import SkipTest

from msgsvc.domain.queues import dead_letter_queue
from msgsvc.store.answers import Answer, deferred
from msgsvc.store.interfaces import (
    Account,
    FileExists,
    IQueueStore,
    Message,
    NoMessage,
    NoThread,
    NotOwner,
    Post,
    QueueStats,
    Tweet,
    Upload,
)
from msgsvc.store.registry import Stores


async def get(answer: Answer[Any]) -> Any:
    """The value of a store's answer, given at once or later."""
    return await deferred(answer)


async def fails(answer: Answer[Any], error: type[Exception]) -> Exception:
    """The ``error`` a store's answer fails with (raised at once or by its Deferred)."""
    try:
        await deferred(answer)
    except error as raised:
        return raised
    raise AssertionError(f"{error.__name__} not raised")


async def figures(queues: IQueueStore, queue: str, now: float) -> QueueStats:
    """A queue's stats without the counters only a shared store keeps (see the Redis store's tests)."""
    return replace(await get(queues.stats(queue, now)), counters=None)


BLOB = "0123456789abcdef" * 2


class StoreContract:
    """The store interfaces' semantics; a subclass says how to open its kind of store."""

    shared = False
    """Whether two opened instances share their state (several nodes)."""

    async def open(self) -> Stores:
        raise NotImplementedError

    async def nodes(self) -> tuple[Stores, Stores]:
        """Two instances on one state, as two nodes have; the test is skipped for a store of one process."""
        if not self.shared:
            raise SkipTest("this kind of store belongs to one process")
        return await self.open(), await self.open()

    # -- queues ------------------------------------------------------------

    async def test_fifo_exact_bytes(self) -> None:
        """Messages come out in the order sent, byte for byte, with increasing ids; then nothing."""
        queues = (await self.open()).queues
        payloads = [b"first", b"123", b"\x00\xff\r\n", b"", b"1.5"]
        ids = [await get(queues.enqueue("q", payload, 10.0 + i)) for i, payload in enumerate(payloads)]
        self.assertEqual(ids, sorted(set(ids)))
        taken = [await get(queues.dequeue("q", 20.0)) for _ in payloads]
        self.assertEqual(
            taken, [Message(i, p, 10.0 + n, 0) for n, (i, p) in enumerate(zip(ids, payloads, strict=True))]
        )
        self.assertIsNone(await get(queues.dequeue("q", 20.0)))
        self.assertIsNone(await get(queues.dequeue("never", 20.0)))
        self.assertEqual(await get(queues.depths()), [])

    async def test_operations_in_the_order_called(self) -> None:
        """Operations called without waiting for each other's answers take effect in the order called."""
        queues = (await self.open()).queues
        answers = []
        for i in range(50):
            answers.append(deferred(queues.enqueue("q", b"%d" % i, 1.0)))
            answers.append(deferred(queues.dequeue("q", 1.0)))
        results = [result for _, result in await DeferredList(answers, fireOnOneErrback=True)]
        self.assertEqual([message.payload for message in results[1::2]], [b"%d" % i for i in range(50)])

    async def test_reserve_then_acknowledge(self) -> None:
        """A reserved message counts a delivery and is hidden; acknowledged, it is gone."""
        queues = (await self.open()).queues
        sent = await get(queues.enqueue("q", b"job", 1.0))
        message = await get(queues.reserve("q", 2.0))
        self.assertEqual(message, Message(sent, b"job", 1.0, 1))
        self.assertEqual(await figures(queues, "q", 2.0), QueueStats(0, 0, 1, None))
        self.assertIsNone(await get(queues.dequeue("q", 2.0)))
        self.assertEqual(await get(queues.depths()), [])
        await get(queues.acknowledge(sent))
        self.assertEqual(await figures(queues, "q", 3.0), QueueStats(0, 0, 0, None))

    async def test_release_with_delay_returns_to_head(self) -> None:
        """A released message is delayed until ready_at, then first in line, its deliveries kept."""
        queues = (await self.open()).queues
        first = await get(queues.enqueue("q", b"a", 1.0))
        await get(queues.enqueue("q", b"b", 1.5))
        await get(queues.reserve("q", 2.0))
        await get(queues.release(first, 12.0))
        self.assertEqual(await figures(queues, "q", 5.0), QueueStats(1, 1, 0, 1.5))
        self.assertEqual(await get(queues.depths()), [("q", 2)])
        self.assertEqual((await get(queues.dequeue("q", 5.0))).payload, b"b")
        self.assertIsNone(await get(queues.dequeue("q", 11.0)))
        self.assertEqual(await get(queues.reserve("q", 12.0)), Message(first, b"a", 1.0, 2))

    async def test_due_messages_come_back_earliest_first(self) -> None:
        """Several released messages that are due go to the head in the order they became ready."""
        queues = (await self.open()).queues
        ids = [await get(queues.enqueue("q", bytes([65 + i]), 1.0)) for i in range(3)]
        await get(queues.enqueue("q", b"tail", 1.0))
        for _ in ids:
            await get(queues.reserve("q", 2.0))
        for message_id, ready_at in zip(ids, [7.0, 5.0, 6.0], strict=True):
            await get(queues.release(message_id, ready_at))
        taken = [(await get(queues.dequeue("q", 9.0))).payload for _ in range(4)]
        self.assertEqual(taken, [b"B", b"C", b"A", b"tail"])

    async def test_unreserve_uncounts_the_delivery(self) -> None:
        """An undone reservation puts the message back at the head with its delivery uncounted."""
        queues = (await self.open()).queues
        first = await get(queues.enqueue("q", b"a", 1.0))
        await get(queues.enqueue("q", b"b", 1.0))
        await get(queues.reserve("q", 2.0))
        await get(queues.unreserve(first))
        self.assertEqual(await get(queues.dequeue("q", 3.0)), Message(first, b"a", 1.0, 0))

    async def test_give_back_to_head(self) -> None:
        """A dequeued message given back is first in line again, unchanged."""
        queues = (await self.open()).queues
        await get(queues.enqueue("q", b"a", 1.0))
        await get(queues.enqueue("q", b"b", 2.0))
        message = await get(queues.dequeue("q", 3.0))
        await get(queues.give_back("q", message))
        self.assertEqual(await figures(queues, "q", 3.0), QueueStats(2, 0, 0, 1.0))
        self.assertEqual(await get(queues.dequeue("q", 3.0)), message)
        self.assertEqual((await get(queues.dequeue("q", 3.0))).payload, b"b")

    async def test_dead_letters_after_max_deliveries(self) -> None:
        """Reserved and released up to the limit, a message moves to <queue>.dead, its deliveries kept."""
        queues = (await self.open()).queues
        sent = await get(queues.enqueue("jobs", b"poison", 1.0))
        await get(queues.enqueue("jobs.dead", b"older", 1.0))
        for attempt in range(1, 4):
            message = await get(queues.reserve("jobs", float(attempt)))
            self.assertEqual((message.id, message.deliveries), (sent, attempt))
            if attempt < 3:
                await get(queues.release(sent, float(attempt)))
        await get(queues.move(sent, dead_letter_queue("jobs"), 5.0))
        self.assertEqual(await get(queues.depths()), [("jobs.dead", 2)])
        self.assertEqual(await figures(queues, "jobs", 5.0), QueueStats(0, 0, 0, None))
        self.assertEqual((await get(queues.dequeue("jobs.dead", 5.0))).payload, b"older")
        self.assertEqual(await get(queues.dequeue("jobs.dead", 5.0)), Message(sent, b"poison", 1.0, 3))

    async def test_depths_and_stats(self) -> None:
        """depths lists queues with ready or delayed messages by name; stats counts one queue."""
        queues = (await self.open()).queues
        for queue, count in [("b", 2), ("a", 1), ("c", 1)]:
            for i in range(count):
                await get(queues.enqueue(queue, b"x", 100.0 + i))
        reserved = await get(queues.reserve("c", 101.0))
        self.assertEqual(await get(queues.depths()), [("a", 1), ("b", 2)])
        self.assertEqual(await figures(queues, "b", 101.0), QueueStats(2, 0, 0, 100.0))
        self.assertEqual(await figures(queues, "c", 101.0), QueueStats(0, 0, 1, None))
        await get(queues.release(reserved.id, 200.0))
        self.assertEqual(await get(queues.depths()), [("a", 1), ("b", 2), ("c", 1)])

    # -- several nodes -------------------------------------------------------

    async def test_every_message_once_across_nodes(self) -> None:
        """Many concurrent takes through two nodes get every message exactly once."""
        one, two = await self.nodes()
        sent = [await get((one, two)[i % 2].queues.enqueue("q", b"%d" % i, 1.0)) for i in range(200)]
        takes = [
            deferred(
                (one, two)[i % 2].queues.reserve("q", 2.0) if i % 3 else (two, one)[i % 2].queues.dequeue("q", 2.0)
            )
            for i in range(300)
        ]
        results = await DeferredList(takes, fireOnOneErrback=True, consumeErrors=True)
        taken = [message.id for _, message in results if message is not None]
        self.assertEqual(sorted(taken), sent)

    async def test_ids_unique_across_nodes(self) -> None:
        """Messages sent at once through two nodes get distinct ids."""
        one, two = await self.nodes()
        sends = [deferred(node.queues.enqueue("q", b"m", 1.0)) for _ in range(100) for node in (one, two)]
        ids = [message_id for _, message_id in await DeferredList(sends, fireOnOneErrback=True)]
        self.assertEqual(len(set(ids)), 200)

    async def test_fifo_across_nodes(self) -> None:
        """What one node sends, another receives in order."""
        one, two = await self.nodes()
        for i in range(5):
            await get(one.queues.enqueue("q", b"%d" % i, 1.0))
        taken = [(await get(two.queues.dequeue("q", 2.0))).payload for _ in range(5)]
        self.assertEqual(taken, [b"0", b"1", b"2", b"3", b"4"])

    async def test_expired_reservation_comes_back_on_the_other_node(self) -> None:
        """A reservation whose lease is over is first in line on any node; the old holder cannot end it."""
        one, two = await self.nodes()
        sent = await get(one.queues.enqueue("q", b"job", 1.0))
        await get(one.queues.enqueue("q", b"next", 1.0))
        await get(one.queues.reserve("q", 2.0))
        self.assertEqual((await get(two.queues.reserve("q", 3.0))).payload, b"next")
        later = 2.0 + self.lease + 0.5
        self.assertEqual(await figures(two.queues, "q", later), QueueStats(1, 0, 1, 1.0))
        self.assertEqual(await get(two.queues.reserve("q", later)), Message(sent, b"job", 1.0, 2))
        await get(one.queues.acknowledge(sent))
        self.assertEqual((await figures(two.queues, "q", later)).reserved, 2)
        await get(two.queues.acknowledge(sent))
        self.assertEqual((await figures(two.queues, "q", later)).reserved, 1)

    lease = 0.0

    # -- microblog -----------------------------------------------------------

    async def test_tweets_last_and_tagged(self) -> None:
        """Posts get increasing ids; last is the newest; tagged lists the newest first, up to the limit."""
        tweets = (await self.open()).tweets
        self.assertIsNone(await get(tweets.last()))
        ids = [await get(tweets.post("ann", f"#a {i}", frozenset({"a"} if i % 2 else {"a", "b"}))) for i in range(5)]
        self.assertEqual(ids, sorted(set(ids)))
        self.assertEqual(await get(tweets.last()), Tweet(ids[-1], "ann", "#a 4"))
        self.assertEqual([t.id for t in await get(tweets.tagged("a", 3))], ids[:1:-1])
        self.assertEqual([t.id for t in await get(tweets.tagged("b", 10))], [ids[4], ids[2], ids[0]])
        self.assertEqual(await get(tweets.tagged("b", 0)), [])
        self.assertEqual(await get(tweets.tagged("none", 5)), [])

    # -- accounts ------------------------------------------------------------

    async def test_accounts_unique_ignoring_case(self) -> None:
        """An account is found by any case of its name; a second one with the name is refused."""
        accounts = (await self.open()).accounts
        self.assertIsNone(await get(accounts.get_account("Zoë")))
        self.assertTrue(await get(accounts.add_account(Account("Zoë", "scrypt$1$ab$cd"))))
        self.assertFalse(await get(accounts.add_account(Account("ZOË", "other"))))
        self.assertEqual(await get(accounts.get_account("zoë")), Account("Zoë", "scrypt$1$ab$cd"))

    async def test_one_account_of_a_name_across_nodes(self) -> None:
        """Two nodes adding the same name at once: exactly one succeeds."""
        one, two = await self.nodes()
        adds = [deferred(node.accounts.add_account(Account(name, name))) for name, node in (("al", one), ("AL", two))]
        results = [added for _, added in await DeferredList(adds, fireOnOneErrback=True)]
        self.assertEqual(sorted(results), [False, True])

    # -- forum ---------------------------------------------------------------

    async def test_threads_and_numbered_posts(self) -> None:
        """Titles are unique, listed oldest first; posts are numbered and renumber after a delete."""
        forum = (await self.open()).forum
        self.assertTrue(await get(forum.create_thread("news", "ann")))
        self.assertFalse(await get(forum.create_thread("news", "bob")))
        self.assertTrue(await get(forum.create_thread("a later one", "bob")))
        self.assertEqual(await get(forum.titles()), ["news", "a later one"])
        self.assertEqual([await get(forum.add_post("news", user, text)) for user, text in self.posts], [1, 2, 3])
        await get(forum.edit_post("news", 2, "bob", "edited\0text"))
        await get(forum.delete_post("news", 1, "ann"))
        self.assertEqual(await get(forum.entries("news")), [Post(1, "bob", "edited\0text"), Post(2, "ann", "same")])
        self.assertEqual(await get(forum.add_post("news", "ann", "same")), 3)
        await get(forum.delete_post("news", 3, "ann"))
        self.assertEqual(await get(forum.entries("news")), [Post(1, "bob", "edited\0text"), Post(2, "ann", "same")])

    posts = [("ann", "hello"), ("bob", "hi"), ("ann", "same")]

    async def test_forum_refusals(self) -> None:
        """No thread, no message and someone else's message are refused, changing nothing."""
        forum = (await self.open()).forum
        await get(forum.create_thread("t", "ann"))
        await get(forum.add_post("t", "ann", "mine"))
        await fails(forum.add_post("nope", "ann", "x"), NoThread)
        await fails(forum.edit_post("nope", 1, "ann", "x"), NoThread)
        await fails(forum.entries("nope"), NoThread)
        await fails(forum.find_upload("nope", "f"), NoThread)
        await fails(forum.add_upload("nope", Upload("ann", "f", BLOB)), NoThread)
        for number in (0, 2, -1):
            await fails(forum.edit_post("t", number, "ann", "x"), NoMessage)
            await fails(forum.delete_post("t", number, "ann"), NoMessage)
        await fails(forum.edit_post("t", 1, "bob", "x"), NotOwner)
        await fails(forum.delete_post("t", 1, "bob"), NotOwner)
        await fails(forum.remove_thread("t", "bob"), NotOwner)
        await fails(forum.remove_thread("nope", "ann"), NoThread)
        self.assertEqual(await get(forum.entries("t")), [Post(1, "ann", "mine")])

    async def test_uploads_in_posting_order_and_thread_removal(self) -> None:
        """Uploads sit among the posts in order, unique by name; removing the thread answers their blob keys."""
        forum = (await self.open()).forum
        await get(forum.create_thread("t", "ann"))
        await get(forum.add_post("t", "ann", "see file"))
        upload = Upload("bob", "a b.txt", BLOB)
        await get(forum.add_upload("t", upload))
        await fails(forum.add_upload("t", Upload("ann", "a b.txt", BLOB[::-1])), FileExists)
        self.assertEqual(await get(forum.add_post("t", "bob", "after")), 2)
        self.assertEqual(await get(forum.entries("t")), [Post(1, "ann", "see file"), upload, Post(2, "bob", "after")])
        self.assertEqual(await get(forum.find_upload("t", "a b.txt")), upload)
        self.assertIsNone(await get(forum.find_upload("t", "other")))
        self.assertEqual(await get(forum.remove_thread("t", "ann")), [BLOB])
        self.assertEqual(await get(forum.titles()), [])
        self.assertTrue(await get(forum.create_thread("t", "bob")))
        self.assertEqual(await get(forum.entries("t")), [])

    # -- files ---------------------------------------------------------------

    async def test_files_round_trip(self) -> None:
        """A file of a few MiB written in pieces comes back byte for byte (on another node too); deleted, it is gone."""
        stores = await self.open()
        other = await self.open() if self.shared else stores
        data = bytes(range(256)) * (3 * 4096 + 7)
        part = stores.files.begin()
        for start in range(0, len(data), 65536):
            part.write(data[start : start + 65536])
        key = await get(stores.files.keep(part))
        self.assertFalse(os.path.exists(part.path))
        size, stream = await get(other.files.open(key))
        with stream:
            self.assertEqual((size, stream.read()), (len(data), data))
        await get(stores.files.delete(key))
        await get(other.files.delete(key))
        with self.assertRaises(FileNotFoundError):
            await get(other.files.open(key))

    async def test_empty_file(self) -> None:
        """An empty upload is kept and read back empty, under a key of its own."""
        files = (await self.open()).files
        first, second = await get(files.keep(files.begin())), await get(files.keep(files.begin()))
        self.assertNotEqual(first, second)
        size, stream = await get(files.open(first))
        with stream:
            self.assertEqual((size, stream.read()), (0, b""))
