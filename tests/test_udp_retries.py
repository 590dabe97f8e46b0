"""UDP tag retries: a tagged request runs once per address and tag; the reply cache behind it."""

from twisted.trial.unittest import SynchronousTestCase

from msgsvc.transports.reply_cache import CACHE_ENTRY_OVERHEAD, ReplyCache
from tests.helpers import UdpHarness, make_broker
from tests.udp_helpers import ALICE, BOB


class TagRetryTests(SynchronousTestCase):
    """Tagged requests are executed once per (address, tag) within 60 s."""

    def setUp(self):
        self.broker = make_broker()
        self.udp = UdpHarness(self.broker)

    def test_retry_not_executed_twice(self):
        """A repeated tagged SEND is answered from the cache and queues one message."""
        first = self.udp.command(b"#r1 SEND once", ALICE)
        again = self.udp.command(b"#r1 SEND once", ALICE)
        self.assertEqual(first, again)
        self.assertEqual(self.broker.queues.depths(), [("default", 1)])

    def test_retry_of_recv_gets_same_message(self):
        """A retried RECV gets the same message again instead of taking another."""
        self.broker.queues.send("default", b"a")
        self.broker.queues.send("default", b"b")
        self.assertEqual(self.udp.command(b"#x RECV", ALICE).payload, b"a")
        self.assertEqual(self.udp.command(b"#x RECV", ALICE).payload, b"a")
        self.assertEqual(self.udp.command(b"#y RECV", ALICE).payload, b"b")

    def test_same_tag_other_address_runs(self):
        """The cache is per address: another client's identical tag is a new request."""
        self.udp.command(b"#t SEND a", ALICE)
        self.udp.command(b"#t SEND a", BOB)
        self.assertEqual(self.broker.queues.depths(), [("default", 2)])

    def test_retry_while_running_is_silent(self):
        """A retry that arrives while the first request still waits gets no second reply."""
        self.udp.send(b"#w RECV 10", ALICE)
        self.udp.send(b"#w RECV 10", ALICE)
        self.udp.command(b"SEND x", BOB)
        self.assertEqual(len(self.udp.datagrams(ALICE)), 1)

    def test_cache_expires(self):
        """After 60 s the same tag is a new request."""
        self.udp.command(b"#e SEND a", ALICE)
        self.broker.clock.advance(60)
        self.udp.command(b"#e SEND a", ALICE)
        self.assertEqual(self.broker.queues.depths(), [("default", 2)])

    def test_cache_bounded_in_bytes(self):
        """The cache forgets its oldest replies beyond its byte budget."""
        cache = ReplyCache(self.broker.clock, max_bytes=2 * (5 + CACHE_ENTRY_OVERHEAD))
        for n in range(5):
            cache.begin((ALICE, n))
            cache.store((ALICE, n), b"12345")
        self.assertEqual(cache.lookup((ALICE, 2)), (False, None))
        self.assertEqual(cache.lookup((ALICE, 3)), (True, b"12345"))
        self.assertEqual(cache.lookup((ALICE, 4)), (True, b"12345"))
