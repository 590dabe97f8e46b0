"""Reliable transfers through the UDP front end and the client library, on a Clock and a lossy path."""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from msgsvc.cli.probe_stats import gen_problem
from msgsvc.client.udp import UdpClient
from msgsvc.domain.broker import Broker
from msgsvc.protocol.reliable import RETRIES
from msgsvc.protocol.transfer import BLOCK
from msgsvc.transports.udp_transfers import PER_ADDRESS
from tests.helpers import UdpHarness, build_table, make_broker
from tests.lossy import LossyLink, run_until

SERVER = ("192.0.2.1", 55556)
PEER = ("198.51.100.7", 40000)


class _Wire:
    """A datagram transport whose writes go onto a link."""

    def __init__(self, link: LossyLink) -> None:
        self.link = link

    def write(self, data: bytes, address: Any = None) -> None:
        self.link.send(data)

    def stopListening(self) -> None:
        """Nothing to close."""


class Network:
    """A server's UDP front end and one client library instance, joined by lossy links both ways."""

    def __init__(self, testcase: TestCase, broker: Broker, loss: float = 0.1, seed: int = 1) -> None:
        self.clock = broker.clock
        assert isinstance(self.clock, Clock)
        self.harness = UdpHarness(broker)
        self.front_end = self.harness.protocol
        self.client = UdpClient(self.clock, *SERVER, timeout=0.5, retries=8)
        down = LossyLink(self.clock, lambda data: self.client.datagramReceived(data, SERVER), seed, loss)
        up = LossyLink(self.clock, lambda data: self.front_end.datagramReceived(data, PEER), seed + 1, loss)
        self.front_end.transport = _Wire(down)  # type: ignore[assignment]
        self.client.makeConnection(_Wire(up))  # type: ignore[arg-type]
        self.up, self.down = up, down
        self.wait(self.client.validate())

    def wait(self, deferred: Deferred[Any]) -> Any:
        """Run the clock until ``deferred`` fires; its result (a failure raises)."""
        outcome: list[Any] = []
        deferred.addBoth(outcome.append)
        run_until(self.clock, lambda: bool(outcome), limit=300)
        assert outcome, "no outcome within 300 simulated seconds"
        if hasattr(outcome[0], "raiseException"):
            outcome[0].raiseException()
        return outcome[0]


class LossyTransferTests(TestCase):
    """Large messages both ways through a path that loses 10%, reorders and duplicates."""

    def test_mebibyte_each_way(self) -> None:
        """A 1 MiB SEND goes up and the same 1 MiB comes down by RECV, exactly, from an untrusted address."""
        net = Network(self, make_broker(udp_trusted=(), max_message=2 << 20))
        payload = os.urandom(1 << 20)
        sent = net.wait(net.client.command("SEND", "@big", payload=payload))
        self.assertEqual(sent.text, f"1 queued {1 << 20} bytes")
        received = net.wait(net.client.command("RECV", "@big"))
        self.assertEqual(received.payload, payload)
        self.assertGreater(net.up.dropped + net.down.dropped, 100)
        self.assertEqual(net.front_end.transfers.budget.held, 0)

    def test_generated_stream(self) -> None:
        """GEN streams its reply from the source as a transfer: 300,000 bytes, the pattern intact."""
        net = Network(self, make_broker(), loss=0.05, seed=3)
        reply = net.wait(net.client.command("GEN", "300000"))
        self.assertEqual(len(reply.payload), 300000)
        self.assertIsNone(gen_problem(reply.payload, 300000))

    def test_small_reply_is_one_datagram(self) -> None:
        """A reply of one block or less comes as a plain datagram even when a transfer was offered."""
        net = Network(self, make_broker(), loss=0.0)
        before = net.down.sent
        reply = net.wait(net.client.command("GEN", "100"))
        self.assertEqual((len(reply.payload), net.down.sent - before), (100, 1))


class FrontEndTransferTests(TestCase):
    """The front end's side of transfers, datagram by datagram."""

    def setUp(self) -> None:
        self.broker = make_broker(max_message=100000)
        self.udp = UdpHarness(self.broker)

    def test_upload_idle_timeout(self) -> None:
        """An upload that stops costs nothing after --idle-timeout: its budget and its slot are freed."""
        self.udp.send(b"%up SEND @q {50000}\r\n")
        self.assertEqual(self.udp.datagrams(), [b"%up A 0\r\n"])
        transfers = self.udp.protocol.transfers
        self.assertEqual(transfers.budget.held, 50000)
        self.broker.clock.advance(self.broker.config.idle_timeout)
        self.assertEqual((transfers.budget.held, transfers.uploads), (0, {}))

    def test_literal_over_limit(self) -> None:
        """An upload over the verb's limit is refused at once, with the request's tag."""
        self.udp.send(b"%up #a SEND @q {100001}\r\n")
        self.assertEqual(
            self.udp.datagrams(), [b"#a ERR too-big literal of 100001 bytes exceeds the 100000-byte limit\r\n"]
        )

    def test_unknown_transfer(self) -> None:
        """A block for no transfer is answered with an abort, so the sender stops at once."""
        self.udp.send(b"%zz B 0 10\n0123456789")
        self.assertEqual(self.udp.datagrams(), [b"%zz X no such transfer\r\n"])

    def test_transfers_per_address(self) -> None:
        """Past PER_ADDRESS downloads at once from one address, a request gets ERR full."""
        for n in range(PER_ADDRESS):
            self.udp.send(b"%%d%d GEN 5000" % n)
        self.udp.datagrams()
        self.udp.send(b"%dx #x GEN 5000")
        self.assertEqual(self.udp.datagrams(), [b"#x ERR full too many transfers in progress; try again later\r\n"])

    def test_failed_download_gives_message_back(self) -> None:
        """A RECV whose transfer is never acknowledged puts the message back at the head of its queue."""
        self.udp.send(b"SEND @q {3000}\n" + b"m" * 3000)
        self.udp.send(b"%r RECV @q")
        self.udp.datagrams()
        self.broker.clock.pump([4.0] * (RETRIES + 2))
        self.assertEqual(self.udp.protocol.transfers.downloads, {})
        self.udp.datagrams()
        self.assertEqual(self.udp.command(b"RECV @q").payload, b"m" * 3000)

    def test_plain_client_gets_datagram(self) -> None:
        """Without %<id> a reply over one block still comes whole in one datagram (nc -u)."""
        self.udp.send(b"GEN 5000")
        (datagram,) = self.udp.datagrams()
        self.assertEqual(len(datagram), len(b"DATA 5000 gen\r\n") + 5000 + 2)

    def test_stop_releases_everything(self) -> None:
        """When the front end stops, uploads release their bytes and downloads end."""
        self.udp.send(b"%up SEND @q {50000}\r\n")
        self.udp.send(b"%dn GEN 50000")
        self.udp.protocol.stopProtocol()
        transfers = self.udp.protocol.transfers
        self.assertEqual((transfers.budget.held, transfers.uploads, transfers.downloads), (0, {}, {}))

    def test_untrusted_without_cookie(self) -> None:
        """An unproved address gets no transfer: a request is refused within its budget, blocks are dropped."""
        udp = UdpHarness(make_broker(udp_trusted=()), table=build_table())
        udp.send(b"%t #a GEN 5000 " + b" " * 20, PEER)
        (reply,) = udp.datagrams(PEER)
        self.assertTrue(reply.startswith(b"#a ERR too-big a 5000-byte reply needs a validated address"))
        udp.send(b"%t B 0 4\nabcd", PEER)
        self.assertEqual(udp.datagrams(PEER), [])
        self.assertEqual(udp.protocol.dropped["transfer"], 1)

    def test_block_size_limit(self) -> None:
        """Every block the server sends holds at most BLOCK payload bytes."""
        self.udp.send(b"%t GEN 20000")
        sizes = [len(data.partition(b"\n")[2]) for data in self.udp.datagrams()]
        self.assertEqual(max(sizes), BLOCK)
