"""Rate limits on LOGIN and REGISTER: per /24 (IPv4) or /56 (IPv6) prefix and for the whole server."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from msgsvc.domain.accounts.throttle import LOGIN_WINDOW, REGISTER_WINDOW, Throttle, prefix_of
from msgsvc.domain.broker import Broker
from msgsvc.domain.errors import AuthFailed, Exists, NoUser
from msgsvc.domain.session import Session
from tests.helpers import FakeClient, TcpHarness
from tests.test_accounts import forum_broker, refusal_of, result_of


class PrefixTests(TestCase):
    """prefix_of: the network an address is throttled with."""

    def test_ipv4_slash_24(self) -> None:
        """An IPv4 address counts with its /24."""
        self.assertEqual(prefix_of("10.0.0.7"), "10.0.0.0/24")
        self.assertEqual(prefix_of("10.0.0.250"), "10.0.0.0/24")
        self.assertEqual(prefix_of("10.0.1.7"), "10.0.1.0/24")

    def test_ipv6_slash_56(self) -> None:
        """An IPv6 address counts with its /56, whatever its zone."""
        self.assertEqual(prefix_of("2001:db8:0:1ff:1:2:3:4"), "2001:db8:0:100::/56")
        self.assertEqual(prefix_of("2001:db8:0:100::1"), "2001:db8:0:100::/56")
        self.assertEqual(prefix_of("fe80::1%eth0"), "fe80::/56")

    def test_ipv4_mapped_is_ipv4(self) -> None:
        """An IPv4-mapped IPv6 address counts as the IPv4 address it maps."""
        self.assertEqual(prefix_of("::ffff:10.0.0.7"), "10.0.0.0/24")

    def test_not_an_address(self) -> None:
        """Something that is not an IP address is its own key."""
        self.assertEqual(prefix_of("/tmp/socket"), "/tmp/socket")


class ThrottleTests(TestCase):
    """Throttle, on a Clock, with a limit of 3 per prefix and 5 in all."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.throttle = Throttle(self.clock, 3, 5, LOGIN_WINDOW, "failed logins")

    def fail_from(self, *hosts: str) -> None:
        """One failed attempt from each host."""
        for host in hosts:
            self.throttle.end(self.throttle.begin(host), counted=True)

    def refusal(self, host: str) -> str:
        """The text begin() is refused with."""
        return self.assertRaises(AuthFailed, self.throttle.begin, host).text

    def test_reaching_a_limit_is_logged(self) -> None:
        """The outcome that uses up a prefix's limit, or the server's, is logged once under ERROR."""
        events: list[dict] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        self.fail_from("10.0.0.1", "10.0.0.2")
        self.assertEqual(events, [])
        self.fail_from("10.0.0.3", "10.1.0.1", "10.2.0.1")
        self.assertEqual(
            [(e["source"], e["category"]) for e in events],
            [("10.0.0.0/24", "ERROR"), ("all addresses together", "ERROR")],
        )

    def test_prefix_shares_the_limit(self) -> None:
        """Attempts from different addresses of one /24 add up; another /24 is unaffected."""
        self.fail_from("10.0.0.1", "10.0.0.2", "10.0.0.3")
        self.assertEqual(self.refusal("10.0.0.200"), "too many failed logins from 10.0.0.0/24; try again in 60 seconds")
        self.throttle.begin("10.0.1.1")

    def test_ipv6_prefix(self) -> None:
        """Addresses of one IPv6 /56 add up; another /56 is unaffected."""
        self.fail_from("2001:db8:0:100::1", "2001:db8:0:1ff::1", "2001:db8:0:180::1")
        self.assertIn("from 2001:db8:0:100::/56", self.refusal("2001:db8:0:1aa::9"))
        self.throttle.begin("2001:db8:0:200::1")

    def test_ipv4_mapped(self) -> None:
        """IPv4-mapped IPv6 addresses count with their IPv4 /24."""
        self.fail_from("10.0.0.1", "::ffff:10.0.0.2", "10.0.0.3")
        self.assertIn("from 10.0.0.0/24", self.refusal("::ffff:10.0.0.9"))

    def test_global_limit(self) -> None:
        """Failures from many prefixes add up to the server-wide limit."""
        self.fail_from("10.0.1.1", "10.0.2.1", "10.0.3.1", "10.0.4.1", "10.0.5.1")
        self.assertEqual(self.refusal("10.0.6.1"), "too many failed logins on this server; try again in 60 seconds")

    def test_running_attempts_count(self) -> None:
        """Attempts still running count toward the limit, so a burst cannot outrun it."""
        for _ in range(3):
            self.throttle.begin("10.0.0.1")
        self.assertIn("10.0.0.0/24", self.refusal("10.0.0.2"))

    def test_uncounted_outcomes_free_the_slot(self) -> None:
        """Attempts that end uncounted (a successful login) leave the count alone."""
        for _ in range(10):
            self.throttle.end(self.throttle.begin("10.0.0.1"), counted=False)
        self.throttle.begin("10.0.0.1")

    def test_sliding_window_and_wait(self) -> None:
        """Old outcomes age out one by one, and the refusal says how long until the oldest does."""
        self.fail_from("10.0.0.1")
        self.clock.advance(30)
        self.fail_from("10.0.0.1", "10.0.0.1")
        self.clock.advance(10)
        self.assertIn("try again in 20 seconds", self.refusal("10.0.0.1"))
        self.clock.advance(20)
        self.throttle.begin("10.0.0.1")

    def test_zero_is_no_limit(self) -> None:
        """A limit of 0 never refuses (per prefix or in all)."""
        throttle = Throttle(self.clock, 0, 0, LOGIN_WINDOW, "failed logins")
        for _ in range(1000):
            throttle.end(throttle.begin("10.0.0.1"), counted=True)
        self.assertEqual(throttle.prefixes, 0)

    def test_memory_bounded(self) -> None:
        """At most MAX_PREFIXES prefixes are remembered, and expired ones are forgotten."""
        self.patch(Throttle, "MAX_PREFIXES", 50)
        throttle = Throttle(self.clock, 3, 0, LOGIN_WINDOW, "failed logins")
        for n in range(2000):
            for _ in range(3):
                throttle.end(throttle.begin(f"10.{n // 256}.{n % 256}.1"), counted=True)
        self.assertEqual(throttle.prefixes, 50)
        self.assertRaises(AuthFailed, throttle.begin, "10.7.207.1")
        self.clock.advance(LOGIN_WINDOW)
        throttle.end(throttle.begin("10.200.0.1"), counted=True)
        self.assertEqual(throttle.prefixes, 1)


class LoginLimitTests(TestCase):
    """LOGIN through the broker, with the limits of its Config."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.broker: Broker = forum_broker(self.clock, max_clients=0, login_limit=3, login_limit_global=5)
        self.accounts = self.broker.forum.accounts
        result_of(self.accounts.import_credentials([("alice", "pw")]))

    def login(self, host: str, secret: str) -> Deferred[str]:
        """A LOGIN as alice from a new client at ``host``."""
        return self.accounts.login(self.session(host), "alice", secret)

    def session(self, host: str) -> Session:
        """A new client at ``host``."""
        return self.broker.open_session(FakeClient(peer=(host, 40000)))

    def test_one_slash_24(self) -> None:
        """Failed logins from three addresses of a /24 refuse the fourth address, even with the right password."""
        for host in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
            self.assertEqual(refusal_of(self.login(host, "bad")), (AuthFailed, "Invalid password"))
        refusal = refusal_of(self.login("192.0.2.4", "pw"))
        self.assertEqual(refusal, (AuthFailed, "too many failed logins from 192.0.2.0/24; try again in 60 seconds"))
        self.assertEqual(result_of(self.login("198.51.100.1", "pw")), "alice")

    def test_ipv6_and_global(self) -> None:
        """IPv6 clients are limited per /56; failures everywhere add up to login_limit_global."""
        for host in ("2001:db8:0:1::1", "2001:db8:0:2::1", "2001:db8:0:3::1"):
            self.assertEqual(refusal_of(self.login(host, "bad"))[0], AuthFailed)
        self.assertIn("from 2001:db8::/56", refusal_of(self.login("2001:db8:0:4::1", "pw"))[1])
        for host in ("203.0.113.1", "198.51.100.1"):
            self.assertEqual(refusal_of(self.login(host, "bad"))[1], "Invalid password")
        refusal = refusal_of(self.login("192.0.2.1", "pw"))
        self.assertEqual(refusal, (AuthFailed, "too many failed logins on this server; try again in 60 seconds"))

    def test_unknown_users_count(self) -> None:
        """Logins as nobody count as failures too (no-user), so names cannot be probed without limit."""
        for _ in range(3):
            self.assertEqual(refusal_of(self.accounts.login(self.session("192.0.2.1"), "nobody", "x"))[0], NoUser)
        self.assertIn("too many failed logins", refusal_of(self.login("192.0.2.1", "pw"))[1])

    def test_over_tcp(self) -> None:
        """The TCP client sees the limit as ERR auth with the prefix and the wait."""
        harness = TcpHarness(self.broker)
        harness.output()
        for _ in range(3):
            self.assertEqual(harness.command(b"LOGIN alice nope").text, "Invalid password")
        reply = harness.command(b"LOGIN alice pw")
        self.assertEqual(
            (reply.code, reply.text), ("auth", "too many failed logins from 127.0.0.0/24; try again in 60 seconds")
        )


class RegisterLimitTests(TestCase):
    """REGISTER through the broker: accounts created per hour, per prefix and in all."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.broker: Broker = forum_broker(self.clock, max_clients=0, register_limit=3, register_limit_global=5)
        self.accounts = self.broker.forum.accounts
        self.names = iter(f"user{n}" for n in range(1000))

    def register(self, host: str, name: str | None = None) -> Deferred[str]:
        """A REGISTER of a new name (or ``name``) from a new client at ``host``."""
        session = self.broker.open_session(FakeClient(peer=(host, 40000)))
        return self.accounts.register(session, name or next(self.names), "pw")

    def test_per_prefix_per_hour(self) -> None:
        """Three accounts from a /24 refuse the fourth for an hour; other prefixes go on."""
        for host in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
            result_of(self.register(host))
        refusal = refusal_of(self.register("192.0.2.4", "late"))
        self.assertEqual(
            refusal, (AuthFailed, "too many accounts registered from 192.0.2.0/24; try again in 3600 seconds")
        )
        self.assertFalse(result_of(self.broker.forum.is_account("late")))
        result_of(self.register("198.51.100.1"))
        self.clock.advance(REGISTER_WINDOW / 2)
        self.assertIn("try again in 1800 seconds", refusal_of(self.register("192.0.2.4"))[1])
        self.clock.advance(REGISTER_WINDOW / 2)
        self.assertEqual(result_of(self.register("192.0.2.4", "late")), "late")

    def test_global_limit(self) -> None:
        """Accounts from every prefix add up to register_limit_global."""
        for n in range(5):
            result_of(self.register(f"10.0.{n}.1"))
        refusal = refusal_of(self.register("10.0.9.1"))
        self.assertEqual(
            refusal, (AuthFailed, "too many accounts registered on this server; try again in 3600 seconds")
        )

    def test_refused_registrations_do_not_count(self) -> None:
        """A REGISTER refused (exists) creates nothing and does not use up the limit."""
        result_of(self.register("192.0.2.1", "taken"))
        for _ in range(5):
            self.assertEqual(refusal_of(self.register("192.0.2.1", "taken"))[0], Exists)
        result_of(self.register("192.0.2.1"))
        result_of(self.register("192.0.2.1"))

    def test_burst_cannot_outrun(self) -> None:
        """Registrations still being hashed count, so a burst sent at once gets only the limit."""
        hashing: Deferred[None] = Deferred()
        self.accounts.run_in_thread = lambda function, *args: hashing.addCallback(lambda _: function(*args))
        burst = [self.register("192.0.2.1") for _ in range(5)]
        self.assertEqual([refusal_of(d)[0] for d in burst[3:]], [AuthFailed, AuthFailed])
        hashing.callback(None)
        self.assertEqual([result_of(d) for d in burst[:3]], ["user0", "user1", "user2"])

    def test_many_from_one_address_over_tcp(self) -> None:
        """The default limits: 20 accounts from one address an hour, then ERR auth saying when to retry."""
        broker = forum_broker(self.clock, max_clients=0)
        replies = []
        for n in range(25):
            harness = TcpHarness(broker, port=41000 + n)
            harness.output()
            replies.append(harness.command(b"REGISTER bulk%d pw" % n))
            harness.disconnect()
        self.assertEqual([r.kind for r in replies], ["OK"] * 20 + ["ERR"] * 5)
        self.assertEqual(
            (replies[-1].code, replies[-1].text),
            ("auth", "too many accounts registered from 127.0.0.0/24; try again in 3600 seconds"),
        )
