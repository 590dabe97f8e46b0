"""Tests for UDP safety: cookies, the 3x budget, no forged sessions, events to validated peers, rate limits."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from benchmarks.amplification import REQUESTS, measure, populate
from msgsvc.dispatch.verbs import build_table
from msgsvc.tap import Options
from msgsvc.transports.udp_safety import AMPLIFICATION, COOKIE_EPOCH, Cookies, RateLimits
from tests.helpers import TcpHarness, UdpHarness, make_broker

TRUSTED = ("127.0.0.1", 50000)
FORGED = ("203.0.113.5", 4000)
PADDED_COOKIE = b"COOKIE" + b" " * 10


def cookie_of(udp: UdpHarness, address: tuple) -> bytes:
    """Ask for the cookie of ``address`` (a padded COOKIE) and return it."""
    udp.send(PADDED_COOKIE, address)
    (reply,) = udp.datagrams(address)
    assert reply.startswith(b"OK cookie ") and reply.endswith(b"\r\n"), reply
    return reply[10:-2]


class CookieTests(SynchronousTestCase):
    """A cookie round trip validates an address; wrong or old cookies are refused."""

    def setUp(self) -> None:
        self.broker = make_broker(udp_trusted=())
        self.udp = UdpHarness(self.broker)

    def test_round_trip(self) -> None:
        """A padded COOKIE gets the cookie; requests carrying it get full replies."""
        cookie = cookie_of(self.udp, FORGED)
        self.assertEqual(len(cookie), 16)
        help_text = self.udp.command(b"!" + cookie + b" #t HELP", FORGED)
        self.assertEqual((help_text.kind, help_text.tag), ("DATA", "t"))

    def test_unpadded_cookie_request_unanswered(self) -> None:
        """A COOKIE request smaller than a third of its reply gets nothing."""
        self.udp.send(b"COOKIE", FORGED)
        self.assertEqual(self.udp.datagrams(FORGED), [])
        self.assertEqual(self.udp.protocol.dropped, {"budget": 1})

    def test_previous_epoch_accepted_older_refused(self) -> None:
        """A cookie is good in its epoch and the next, not after."""
        cookie = cookie_of(self.udp, FORGED)
        self.broker.clock.advance(COOKIE_EPOCH)
        self.assertEqual(self.udp.command(b"!" + cookie + b" GEN 1000", FORGED).kind, "DATA")
        self.broker.clock.advance(COOKIE_EPOCH)
        self.assertEqual(self.udp.command(b"!" + cookie + b" PING", FORGED).code, "bad-args")

    def test_other_address_refused(self) -> None:
        """A cookie is bound to its host and port."""
        cookie = cookie_of(self.udp, FORGED)
        for other in (("203.0.113.6", 4000), ("203.0.113.5", 4001)):
            reply = self.udp.command(b"!" + cookie + b" PING " + b"x" * 40, other)
            self.assertEqual(reply.code, "bad-args")
            self.assertIn("COOKIE", reply.text)

    def test_malformed_cookie_refused(self) -> None:
        """A first word starting with ! that is not 16 hex digits is refused."""
        self.assertEqual(self.udp.command(b"!xyz PING" + b" " * 30, FORGED).code, "bad-args")

    def test_cookie_function(self) -> None:
        """The cookie is a function of secret, host, port and epoch."""
        clock = Clock()
        cookies = Cookies(clock, b"s" * 32)
        self.assertEqual(cookies.make("h", 1), Cookies(clock, b"s" * 32).make("h", 1))
        self.assertNotEqual(cookies.make("h", 1), Cookies(clock, b"t" * 32).make("h", 1))
        self.assertTrue(cookies.valid("h", 1, cookies.make("h", 1, -1)))
        self.assertFalse(cookies.valid("h", 1, cookies.make("h", 1, -2)))


class AmplificationTests(SynchronousTestCase):
    """An unvalidated address never gets more than 3x the bytes it sent."""

    def test_every_verb(self) -> None:
        """Every verb of the table, with typical small requests, stays within the budget."""
        broker = make_broker(max_clients=0)
        udp = UdpHarness(broker)
        populate(broker, udp)
        table = build_table()
        verbs = table.verbs
        self.assertEqual(sorted(REQUESTS), verbs)
        factors = {}
        port = 1000
        for verb in verbs:
            for datagram in REQUESTS[verb]:
                for tagged in (datagram, b"#t1 " + datagram):
                    port += 1
                    factor = measure(udp, tagged, ("203.0.113.9", port))
                    self.assertLessEqual(factor, AMPLIFICATION, tagged)
                    factors[verb] = max(factors.get(verb, 0.0), factor)
        self.factors = factors

    def test_repeated_requests_share_the_budget(self) -> None:
        """Many requests from one address together get at most 3x their bytes."""
        broker = make_broker()
        udp = UdpHarness(broker)
        sent = 0
        for _ in range(20):
            udp.send(b"GEN 65000", FORGED)
            udp.send(b"HELP", FORGED)
            sent += len(b"GEN 65000") + len(b"HELP")
        self.assertLessEqual(sum(len(d) for d in udp.datagrams(FORGED)), AMPLIFICATION * sent)

    def test_hint(self) -> None:
        """A reply over the budget is replaced by the too-big hint when that fits."""
        udp = UdpHarness(make_broker())
        reply = udp.command(b"#t GEN 65000" + b" " * 40, FORGED)
        self.assertEqual((reply.code, reply.tag), ("too-big", "t"))
        self.assertIn("validated address", reply.text)

    def test_recv_given_back(self) -> None:
        """A message RECV took but could not send within the budget goes back to its queue."""
        broker = make_broker()
        udp = UdpHarness(broker)
        udp.command(b"SEND @q {1000}\n" + b"m" * 1000, TRUSTED)
        self.assertEqual(udp.command(b"#abcdefghijklmnop RECV @q", FORGED).code, "too-big")
        self.assertEqual(udp.command(b"RECV @q", TRUSTED).payload, b"m" * 1000)


class SessionSafetyTests(SynchronousTestCase):
    """Forged datagrams open no session; events go only to validated addresses."""

    def test_forged_session_verbs_take_no_slot(self) -> None:
        """Forged STREAM/NAME/FOLLOW are refused with the hint; a TCP client still connects."""
        broker = make_broker(max_clients=1)
        udp = UdpHarness(broker)
        for port, verb in enumerate((b"STREAM 10 5", b"NAME bob", b"FOLLOW x", b"LOGIN a b")):
            address = ("198.51.100.7", 2000 + port)
            udp.send(verb + b" " * 60, address)
            (reply,) = udp.received(address)
            self.assertEqual(reply.code, "bad-args")
            self.assertIn("COOKIE", reply.text)
        self.assertEqual(broker.sessions, [])
        self.assertTrue(TcpHarness(broker).output().startswith(b"OK msgsvc"))

    def test_events_only_to_validated(self) -> None:
        """A validated address gets chat events; datagrams without its cookie cannot act in its session."""
        broker = make_broker(udp_trusted=())
        udp = UdpHarness(broker)
        cookie = cookie_of(udp, FORGED)
        self.assertEqual(udp.command(b"!" + cookie + b" NAME bob", FORGED).kind, "OK")
        tcp = TcpHarness(broker)
        tcp.output()
        tcp.command(b"NAME alice")
        tcp.command(b"SAY hello")
        self.assertTrue(any(b"hello" in d for d in udp.datagrams(FORGED)))
        udp.send(b"QUIT" + b" " * 20, FORGED)  # forged: not the session's
        udp.datagrams(FORGED)
        self.assertEqual(len(broker.sessions), 2)

    def test_stream_validated(self) -> None:
        """A validated STREAM gets its packets."""
        udp = UdpHarness(make_broker(udp_trusted=()))
        cookie = cookie_of(udp, FORGED)
        udp.send(b"!" + cookie + b" STREAM 10 3", FORGED)
        udp.broker.clock.pump([0.01] * 5)
        self.assertEqual(len(udp.datagrams(FORGED)), 4)


class RateLimitTests(SynchronousTestCase):
    """Per address and per prefix rates, and the egress cap; drops are counted."""

    def test_address_rate(self) -> None:
        """Past its burst an address's datagrams are dropped and counted, until tokens come back."""
        udp = UdpHarness(make_broker())
        for _ in range(1000):
            udp.send(b"PING", FORGED)
        self.assertEqual(len(udp.datagrams(FORGED)), 400)
        self.assertEqual(udp.protocol.dropped["address-rate"], 600)
        udp.broker.clock.advance(1)
        self.assertEqual(udp.command(b"PING", FORGED).text, "PONG")

    def test_prefix_rate(self) -> None:
        """Many addresses of one /24 share the prefix's bucket."""
        udp = UdpHarness(make_broker())
        for n in range(3000):
            udp.send(b"PING", (f"203.0.113.{n % 200}", n))
        self.assertEqual(udp.protocol.dropped["prefix-rate"], 1000)

    def test_egress_cap(self) -> None:
        """Bytes to unvalidated peers together are capped per second."""
        udp = UdpHarness(make_broker())
        udp.protocol.safety.limits = RateLimits(udp.broker.clock, egress=100)
        for n in range(30):
            udp.send(b"PING", (f"192.0.2.{n}", 9))
        self.assertEqual(udp.protocol.dropped["egress"], 30 - 100 // len(b"OK PONG\r\n"))

    def test_trusted_unaffected(self) -> None:
        """Trusted peers have no rate limit, no budget, and a cookie from them is ignored."""
        udp = UdpHarness(make_broker())
        for _ in range(1000):
            udp.send(b"PING", TRUSTED)
        self.assertEqual(len(udp.datagrams(TRUSTED)), 1000)
        self.assertEqual(udp.command(b"GEN 65000", TRUSTED).kind, "DATA")
        self.assertEqual(udp.command(b"!0123456789abcdef PING", TRUSTED).text, "PONG")
        self.assertEqual(udp.protocol.dropped, {})


class OptionTests(SynchronousTestCase):
    """--udp-trusted: CIDRs, none, and a usage error for anything else."""

    def test_option(self) -> None:
        """The default trusts loopback, none trusts nobody, a bad CIDR is a usage error."""
        options = Options()
        options.parseOptions([])
        self.assertEqual([str(n) for n in options.config().udp_trusted], ["127.0.0.0/8", "::1/128"])
        options = Options()
        options.parseOptions(["--udp-trusted", "none"])
        self.assertEqual(options.config().udp_trusted, ())
        options = Options()
        options.parseOptions(["--udp-trusted", "10.0.0.0/8, 2001:db8::/32"])
        self.assertEqual(len(options.config().udp_trusted), 2)
        self.assertRaises(usage.UsageError, Options().parseOptions, ["--udp-trusted", "10.0.0.0/33"])
