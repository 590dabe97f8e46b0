"""The chat system: names and presence, SAY, WHO and STATUS, and chat over UDP sessions."""

from tests.chat_helpers import ChatCase
from tests.helpers import TcpHarness, UdpHarness, make_broker

ALICE_UDP = ("127.0.0.1", 51001)


class NameTests(ChatCase):
    """NAME and presence events."""

    def test_join_heard_by_others_only(self):
        """Naming yourself tells the other named clients * JOIN; you get only your OK."""
        alice = self.client("alice")
        unnamed = self.client()
        self.client("bob")
        self.assertEqual(self.events(alice), [("JOIN", "bob")])
        self.assertEqual(unnamed.output(), b"")

    def test_names_unique_ignoring_case(self):
        """A name in use by another connected client is refused whatever its case."""
        self.client("Alice")
        reply = self.client().command(b"NAME aLiCe")
        self.assertEqual(reply.code, "name-taken")

    def test_name_reusable_after_leave(self):
        """A departed client's name is free again, and the others heard * LEAVE."""
        bob = self.client("bob")
        alice = self.client("alice")
        alice.disconnect()
        self.assertEqual(self.events(bob), [("JOIN", "alice"), ("LEAVE", "alice")])
        self.client("ALICE")

    def test_same_name_again_is_quiet(self):
        """NAME with the name you already have changes nothing and tells nobody."""
        bob = self.client("bob")
        alice = self.client("alice")
        bob.output()
        self.assertEqual(alice.command(b"NAME alice").text, "Your name is set as: alice")
        self.assertEqual(bob.output(), b"")

    def test_rename(self):
        """Renaming is heard as LEAVE of the old name and JOIN of the new."""
        bob = self.client("bob")
        alice = self.client("alice")
        bob.output()
        alice.command(b"NAME alicia")
        self.assertEqual(self.events(bob), [("LEAVE", "alice"), ("JOIN", "alicia")])

    def test_account_names_reserved(self):
        """NAME cannot take a registered forum account's name, whatever its case; its owner may."""
        owner = TcpHarness(self.broker, next(self.ports))
        owner.output()
        self.assertEqual(owner.command(b"REGISTER Dana pw").text, "Welcome to the forum")
        reply = self.client().command(b"NAME dana")
        self.assertEqual(
            (reply.code, reply.text), ("name-taken", "dana is a forum account; LOGIN dana <password> to use it")
        )
        self.assertEqual(owner.command(b"NAME DANA").text, "Your name is set as: DANA")

    def test_bad_names(self):
        """Names are 1-32 of A-Za-z0-9_.-; anything else is bad-args."""
        c = self.client()
        for line in (b"NAME", b"NAME " + b"a" * 33, b"NAME a b", b"NAME caf\xc3\xa9", b"NAME a/b", b"NAME {3}\na\nb"):
            self.assertEqual(c.command(line).code, "bad-args", line)
        self.assertEqual(self.broker.chat.members, [])


class SayTests(ChatCase):
    """SAY: echo + ACK, broadcast to the others."""

    def test_say(self):
        """The sender gets OK <text> ACK; every other named client gets * CHAT; unnamed hear nothing."""
        alice, bob, carol = self.client("alice"), self.client("bob"), self.client("carol")
        lurker = self.client()
        alice.output(), bob.output()
        self.assertEqual(alice.command(b"SAY Hello  World ").text, "Hello  World  ACK")
        self.assertEqual(self.events(bob), [("CHAT", "alice Hello  World ")])
        self.assertEqual(self.events(carol), [("CHAT", "alice Hello  World ")])
        self.assertEqual(lurker.output(), b"")

    def test_unnamed_cannot_speak(self):
        """A client without a name gets ERR no-name."""
        self.client("bob")
        self.assertEqual(self.client().command(b"SAY hi").code, "no-name")

    def test_commands_never_broadcast(self):
        """Commands are not chat: the others hear nothing of them."""
        alice, bob = self.client("alice"), self.client("bob")
        alice.output()
        for line in (b"WHO", b"STATUS", b"LIST", b"SEND x", b"PING", b"GET nothing"):
            bob.command(line)
        self.assertEqual(alice.output(), b"")

    def test_bad_chat_text(self):
        """Empty, multi-line or non-UTF-8 chat is refused and not broadcast."""
        alice, bob = self.client("alice"), self.client("bob")
        alice.output()
        for line in (b"SAY", b"SAY   ", b"SAY {3}\na\nb", b"SAY \xff\xfe"):
            self.assertEqual(bob.command(line).code, "bad-args", line)
        self.assertEqual(alice.output(), b"")

    def test_unicode_chat(self):
        """UTF-8 text is relayed as is."""
        alice, bob = self.client("alice"), self.client("bob")
        alice.output()
        bob.command("SAY héllo ✓".encode())
        self.assertEqual(alice.output(), "* CHAT bob héllo ✓\r\n".encode())


class WhoStatusTests(ChatCase):
    """WHO and STATUS."""

    def test_who(self):
        """WHO lists connected named clients with transport and address, guests as ~name."""
        self.client("alice")
        self.client()
        bob = self.client("bob")
        self.assertEqual(bob.command(b"WHO").payload, b"~alice tcp 127.0.0.1:41000\r\n~bob tcp 127.0.0.1:41002\r\n")

    def test_status_keeps_gone_clients(self):
        """STATUS lists every client of the run, gone ones with their close time and chat count."""
        self.clock.advance(1_700_000_000)
        alice = self.client("alice")
        alice.command(b"SAY one")
        alice.command(b"SAY two")
        self.clock.advance(61)
        alice.disconnect()
        watcher = self.client()
        lines = watcher.command(b"STATUS").payload.decode().splitlines()
        self.assertEqual(
            lines,
            [
                "1 ~alice tcp 127.0.0.1:41000 opened=2023-11-14T22:13:20Z closed=2023-11-14T22:14:21Z sent=2",
                "2 - tcp 127.0.0.1:41001 opened=2023-11-14T22:14:21Z closed=- sent=0",
            ],
        )

    def test_history_bounded(self):
        """Only the last --history gone clients are remembered."""
        self.broker = make_broker(max_clients=0, files=self.files, history=2)
        for _ in range(5):
            self.client().disconnect()
        ids = [line.split()[0] for line in self.client().command(b"STATUS").payload.decode().splitlines()]
        self.assertEqual(ids, ["4", "5", "6"])


class UdpChatTests(ChatCase):
    """Chat over UDP sessions, mixed with TCP members."""

    def test_udp_member_chats_with_tcp(self):
        """A UDP member names itself, hears TCP chat as datagrams, and is heard by TCP members."""
        tcp = self.client("bob")
        udp = UdpHarness(self.broker)
        self.assertEqual(udp.command(b"NAME alice", ALICE_UDP).text, "Your name is set as: alice")
        self.assertEqual(self.events(tcp), [("JOIN", "alice")])
        tcp.command(b"SAY hi alice")
        self.assertEqual(udp.datagrams(ALICE_UDP), [b"* CHAT bob hi alice\r\n"])
        self.assertEqual(udp.command(b"SAY hi bob", ALICE_UDP).text, "hi bob ACK")
        self.assertEqual(self.events(tcp), [("CHAT", "alice hi bob")])
        self.assertEqual(tcp.command(b"WHO").payload, b"~bob tcp 127.0.0.1:41000\r\n~alice udp 127.0.0.1:51001\r\n")

    def test_udp_quit_and_idle_leave(self):
        """A UDP member that quits or idles out is heard leaving."""
        tcp = self.client("bob")
        udp = UdpHarness(self.broker)
        udp.command(b"NAME alice", ALICE_UDP)
        udp.command(b"QUIT", ALICE_UDP)
        udp.command(b"NAME carol", ("127.0.0.1", 51002))
        self.assertEqual(self.events(tcp), [("JOIN", "alice"), ("LEAVE", "alice"), ("JOIN", "carol")])
        self.clock.advance(300)
        tcp.command(b"PING")
        self.clock.advance(300)
        self.assertEqual(udp.datagrams(("127.0.0.1", 51002)), [b"* BYE idle-timeout\r\n"])
        self.assertEqual(self.events(tcp), [("LEAVE", "carol")])

    def test_cap_shared_with_udp(self):
        """With the default cap of 3, a 4th client (TCP or UDP) is refused with the original's text."""
        self.broker = make_broker(files=self.files)
        first = self.client("a")
        self.client("b")
        udp = UdpHarness(self.broker)
        udp.command(b"NAME c", ALICE_UDP)
        reply = udp.command(b"NAME d", ("127.0.0.1", 51002))
        self.assertEqual((reply.code, reply.text), ("full", "Server is full, try again later."))
        first.disconnect()
        self.assertEqual(udp.command(b"NAME d", ("127.0.0.1", 51002)).text, "Your name is set as: d")
