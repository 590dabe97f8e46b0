"""Guests (named by NAME) and forum accounts: accounts own their names; guests show as ~name."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from msgsvc.client import Event
from msgsvc.domain.session import Session
from tests.helpers import FakeClient, TcpHarness, UdpHarness, make_broker


class GuestCase(TestCase):
    """A broker with cheap password hashes, and TCP clients to drive it."""

    def setUp(self) -> None:
        self.broker = make_broker(max_clients=0, password_cost=1)
        self.ports = iter(range(41000, 42000))

    def client(self, name: str | None = None) -> TcpHarness:
        """A new TCP client, named ``name`` by NAME (a guest) if given."""
        harness = TcpHarness(self.broker, next(self.ports))
        harness.output()
        if name is not None:
            self.assertEqual(harness.command(b"NAME " + name.encode()).text, f"Your name is set as: {name}")
        return harness

    def events(self, harness: TcpHarness) -> list[str]:
        """The events a client got since the last call, as '<NAME> <args>'."""
        return [f"{item.name} {item.args}" for item in harness.received() if isinstance(item, Event)]

    def listing(self, harness: TcpHarness, verb: bytes) -> list[str]:
        """The lines of a listing (WHO, STATUS, TAGGED ...)."""
        return harness.command(verb).payload.decode().splitlines()


class NameOwnershipTests(GuestCase):
    """REGISTER and LOGIN take an account's name from a guest."""

    def test_register_takes_name_from_guest(self) -> None:
        """REGISTER erin while a guest is erin: everyone hears LEAVE erin, then the others JOIN erin."""
        guest = self.client("erin")
        bob = self.client("bob")
        registrant = self.client()
        self.events(guest)
        self.assertEqual(registrant.command(b"REGISTER erin pw").text, "Welcome to the forum")
        self.assertEqual(self.events(guest), ["LEAVE erin"])
        self.assertEqual(self.events(bob), ["LEAVE erin", "JOIN erin"])
        self.assertEqual(self.events(registrant), [])
        self.assertIsNone(guest.protocol.session.name)
        self.assertEqual(guest.command(b"SAY hi").code, "no-name")
        self.assertEqual(self.listing(bob, b"WHO"), ["~bob tcp 127.0.0.1:41001", "erin tcp 127.0.0.1:41002"])

    def test_guest_cannot_take_it_back(self) -> None:
        """The guest that lost the name cannot NAME itself erin again, but may pick another name."""
        guest = self.client("erin")
        self.client().command(b"REGISTER erin pw")
        self.assertEqual(guest.command(b"NAME ERIN").code, "name-taken")
        self.assertEqual(guest.command(b"NAME erin2").text, "Your name is set as: erin2")

    def test_guest_registers_its_own_name(self) -> None:
        """A guest registering the name it already has keeps it quietly and is no longer a guest."""
        guest = self.client("erin")
        bob = self.client("bob")
        self.assertEqual(guest.command(b"REGISTER erin pw").text, "Welcome to the forum")
        self.assertEqual(self.events(bob), [])
        self.assertEqual(self.listing(bob, b"WHO"), ["erin tcp 127.0.0.1:41000", "~bob tcp 127.0.0.1:41001"])

    def test_login_takes_name_from_guest(self) -> None:
        """LOGIN erin while a guest holds erin (named before the account existed) takes it the same way."""
        self.client().command(b"REGISTER erin pw")
        self.broker.close_session(self.broker.sessions[0])
        guest = self.client()
        self.broker.chat.set_name(guest.protocol.session, "erin")
        bob = self.client("bob")
        self.assertEqual(self.client().command(b"LOGIN erin pw").text, "Welcome to the forum")
        self.assertEqual(self.events(guest), ["JOIN bob", "LEAVE erin"])
        self.assertEqual(self.events(bob), ["LEAVE erin", "JOIN erin"])
        self.assertEqual(guest.command(b"SAY hi").code, "no-name")

    def test_owner_may_rename_and_return(self) -> None:
        """A logged-in client may take another name (shown as ~name) and its account's name back."""
        owner = self.client()
        owner.command(b"REGISTER Dana pw")
        self.assertEqual(owner.command(b"NAME dj").text, "Your name is set as: dj")
        self.assertEqual(self.listing(owner, b"WHO"), ["~dj tcp 127.0.0.1:41000"])
        self.assertEqual(owner.command(b"NAME dana").text, "Your name is set as: dana")
        self.assertEqual(self.listing(owner, b"WHO"), ["dana tcp 127.0.0.1:41000"])
        reply = self.client().command(b"NAME DANA")
        self.assertEqual(
            (reply.code, reply.text), ("name-taken", "DANA is a forum account; LOGIN DANA <password> to use it")
        )

    def test_chat_keeps_bare_names(self) -> None:
        """CHAT, JOIN and LEAVE events and NAME's reply use the bare name, for guests and accounts alike."""
        listener = self.client("lis")
        guest = self.client("gus")
        guest.command(b"SAY hello")
        account = self.client()
        account.command(b"REGISTER acc pw")
        account.command(b"SAY hi")
        self.assertEqual(self.events(listener), ["JOIN gus", "CHAT gus hello", "JOIN acc", "CHAT acc hi"])


class DisplayNameTests(GuestCase):
    """Where the server attributes something to a name: ~name for guests, the bare name for accounts."""

    def test_who_and_status(self) -> None:
        """WHO and STATUS show guests as ~name and account holders (connected or gone) bare."""
        self.client("guest")
        account = self.client()
        account.command(b"REGISTER acc pw")
        account.disconnect()
        udp = UdpHarness(self.broker)
        udp.command(b"NAME ugly")
        watcher = self.client()
        self.assertEqual(self.listing(watcher, b"WHO"), ["~guest tcp 127.0.0.1:41000", "~ugly udp 127.0.0.1:50000"])
        names = [line.split()[1] for line in self.listing(watcher, b"STATUS")]
        self.assertEqual(names, ["~guest", "acc", "~ugly", "-"])

    def test_tweet_authors(self) -> None:
        """Tweets are by ~name from a guest, by the bare name from an account, by anonymous without a name."""
        follower = self.client()
        follower.command(b"FOLLOW #t")
        guest = self.client("erin")
        guest.command(b"TWEET from the guest #t")
        registrant = self.client()
        registrant.command(b"REGISTER erin pw")
        registrant.command(b"TWEET from the account #t")
        self.client().command(b"TWEET from nobody #t")
        self.assertEqual(
            self.events(follower),
            ["TWEET 1 ~erin from the guest #t", "TWEET 2 erin from the account #t", "TWEET 3 anonymous from nobody #t"],
        )
        self.assertEqual(
            self.listing(follower, b"TAGGED #t"),
            ["3 anonymous from nobody #t", "2 erin from the account #t", "1 ~erin from the guest #t"],
        )


class SessionDisplayNameTests(TestCase):
    """Session.display_name: the one place of the rule."""

    def session(self, name: str | None, account: str | None) -> Session:
        """A session with this chat name and account."""
        session = Session(1, FakeClient(), Clock().seconds())
        session.name, session.account = name, account
        return session

    def test_rule(self) -> None:
        """No name is None; a name equal (ignoring case) to the session's account is bare; any other is ~name."""
        self.assertIsNone(self.session(None, None).display_name)
        self.assertIsNone(self.session(None, "erin").display_name)
        self.assertEqual(self.session("erin", None).display_name, "~erin")
        self.assertEqual(self.session("Erin", "erin").display_name, "Erin")
        self.assertEqual(self.session("dj", "erin").display_name, "~dj")
