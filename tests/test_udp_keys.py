"""Session keys: a forged datagram cannot act in a logged-in UDP session, and a port's next owner inherits nothing."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from tests.helpers import UdpHarness, make_broker

ALICE = ("127.0.0.1", 50000)
KEY = b"&alicesecret1 "


class KeyTests(TestCase):
    """LOGIN and REGISTER over UDP bind the session to the key the client chose."""

    def setUp(self) -> None:
        self.broker = make_broker()
        self.udp = UdpHarness(self.broker)
        self.assertEqual(self.udp.command(KEY + b"REGISTER alice pw").kind, "OK")

    def test_login_needs_key(self) -> None:
        """LOGIN without a key is refused with a hint, and opens no session."""
        reply = self.udp.command(b"LOGIN bob pw", ("127.0.0.1", 50001))
        self.assertEqual((reply.code, reply.text.split(":")[0]), ("bad-args", "LOGIN over UDP needs a session key"))
        self.assertEqual(len(self.broker.sessions), 1)

    def test_key_acts_in_session(self) -> None:
        """With its key the real client's requests run in its session."""
        self.assertEqual(self.udp.command(KEY + b"CRT t").text, "Thread t created")

    def test_forged_without_key(self) -> None:
        """A datagram from the same address without the key runs outside the session: not logged in."""
        self.assertEqual(self.udp.command(b"CRT t").code, "not-logged-in")
        self.assertEqual(self.udp.command(b"&guessedkey1 CRT t").code, "not-logged-in")

    def test_forged_quit(self) -> None:
        """A forged QUIT ends nothing: the session and its login stay."""
        self.udp.command(b"QUIT")
        self.assertEqual(len(self.broker.sessions), 1)
        self.assertEqual(self.udp.command(KEY + b"CRT t").kind, "OK")

    def test_forged_session_verb(self) -> None:
        """A forged NAME or LOGIN cannot replace the keyed session."""
        for forged in (b"NAME mallory", b"&otherkey99 LOGIN alice pw"):
            reply = self.udp.command(forged)
            self.assertEqual(reply.code, "bad-args")
            self.assertIn("bound to a key", reply.text)
        self.assertEqual(self.udp.command(KEY + b"CRT t").kind, "OK")

    def test_next_owner_of_port(self) -> None:
        """A later process on the same port (another key) inherits nothing of the session."""
        self.assertEqual(self.udp.command(b"&newprocess1 LST").code, "not-logged-in")
        self.assertEqual(self.udp.command(b"&newprocess1 LOGIN alice pw").code, "bad-args")

    def test_quit_with_key(self) -> None:
        """QUIT with the key ends the session; the account is free again."""
        self.assertEqual(self.udp.command(KEY + b"QUIT").text, "bye")
        self.assertEqual(self.broker.sessions, [])
        self.assertEqual(self.udp.command(b"&another12 LOGIN alice pw").kind, "OK")

    def test_name_session_needs_no_key(self) -> None:
        """A chat session without an identity stays keyless: nc users name themselves as before."""
        peer = ("127.0.0.1", 50002)
        self.assertEqual(self.udp.command(b"NAME bob", peer).kind, "OK")
        self.assertEqual(self.udp.command(b"SAY hi", peer).kind, "OK")

    def test_login_in_named_session(self) -> None:
        """LOGIN with a key inside a keyless chat session binds that session to the key."""
        peer = ("127.0.0.1", 50003)
        self.udp.command(b"NAME carol", peer)
        self.assertEqual(self.udp.command(b"&carolkey1 REGISTER carol pw", peer).kind, "OK")
        self.assertEqual(self.udp.command(b"CRT x", peer).code, "not-logged-in")
        self.assertEqual(self.udp.command(b"&carolkey1 CRT x", peer).kind, "OK")


class UntrustedKeyTests(TestCase):
    """Outside --udp-trusted a request carries both the cookie and the key."""

    def test_cookie_and_key(self) -> None:
        """The cookie proves the address; the key is still needed to act in the session."""
        udp = UdpHarness(make_broker(udp_trusted=(), allow_plaintext_auth=True))  # UDP has no TLS
        peer = ("203.0.113.9", 4000)
        udp.send(b"COOKIE" + b" " * 26, peer)
        (answer,) = udp.datagrams(peer)
        cookie = b"!" + answer.split()[-1] + b" "
        self.assertEqual(udp.command(cookie + b"&mykey1234 REGISTER dave pw", peer).kind, "OK")
        self.assertEqual(udp.command(cookie + b"&mykey1234 CRT t", peer).kind, "OK")
        self.assertEqual(udp.command(cookie + b"CRT u", peer).code, "not-logged-in")
