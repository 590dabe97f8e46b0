"""The forum over UDP sessions: the verbs, datagram-sized downloads, login and logout."""

from __future__ import annotations

from msgsvc.transports.udp import MAX_DATAGRAM
from tests.forum_helpers import ForumTestCase
from tests.helpers import UdpHarness


class UdpTests(ForumTestCase):
    """The forum over UDP sessions."""

    def setUp(self) -> None:
        super().setUp()
        self.udp = UdpHarness(self.broker, prefix=b"&forumkey ")

    def test_forum_over_udp(self) -> None:
        """REGISTER starts a session in which the forum verbs work, uploads and downloads included."""
        self.assertReply(self.udp.command(b"REGISTER alice pw"), "OK", "Welcome to the forum")
        self.assertEqual(len(self.broker.sessions), 1)
        self.assertReply(self.udp.command(b"CRT t"), "OK")
        self.assertReply(self.udp.command(b"MSG t hi"), "OK", "1")
        self.assertReply(self.udp.command(b"UPD t b.bin {4}\n\x00\r\n\xff"), "OK")
        self.assertEqual(self.udp.command(b"RDT t").payload, b"1 alice: hi\r\nalice uploaded b.bin\r\n")
        self.assertEqual(self.udp.command(b"DWN t b.bin").payload, b"\x00\r\n\xff")

    def test_download_too_big_for_datagram(self) -> None:
        """A file that does not fit one datagram is ERR too-big over UDP (and fine over TCP)."""
        tcp = self.client("alice")
        tcp.command(b"CRT t")
        tcp.command(b"UPD t big {%d}\n" % (MAX_DATAGRAM + 1) + b"x" * (MAX_DATAGRAM + 1))
        self.udp.command(b"REGISTER bob pw")
        self.assertReply(self.udp.command(b"DWN t big"), "ERR", code="too-big")

    def test_failed_login_ends_session(self) -> None:
        """A failed LOGIN over UDP does not leave a session behind."""
        self.assertReply(self.udp.command(b"LOGIN nobody pw"), "ERR", code="no-user")
        self.assertEqual(self.broker.sessions, [])

    def test_forum_without_session(self) -> None:
        """A forum verb from an address without a session is not-logged-in."""
        self.assertReply(self.udp.command(b"LST"), "ERR", code="not-logged-in")

    def test_quit_logs_out(self) -> None:
        """QUIT ends the UDP session and frees the account."""
        self.udp.command(b"REGISTER alice pw")
        self.assertReply(self.udp.command(b"QUIT"), "OK", "bye")
        self.assertReply(self.client().command(b"LOGIN alice pw"), "OK")

    def test_idle_timeout_logs_out(self) -> None:
        """An idle UDP session gets BYE idle-timeout and its account is free again."""
        self.udp.command(b"REGISTER alice pw")
        self.clock.advance(self.broker.config.idle_timeout)
        self.assertIn(b"* BYE idle-timeout\r\n", self.udp.datagrams())
        self.assertReply(self.client().command(b"LOGIN alice pw"), "OK")

    def test_udp_and_tcp_single_login(self) -> None:
        """An account logged in over UDP is in-use for a TCP client."""
        self.udp.command(b"REGISTER alice pw")
        self.assertReply(self.client().command(b"LOGIN alice pw"), "ERR", "alice has already logged in", "in-use")
