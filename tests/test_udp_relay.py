"""The CLIs' UDP transfers over real sockets, through a relay on loopback that loses and reorders datagrams."""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from benchmarks.udp import LossyRelay
from tests.helpers import make_broker, run_cli, serve_for_test, temp_dir


class RelayTests(TestCase):
    """msgsvc-probe and msgsvc-client over UDP through a path with 5% loss each way."""

    timeout = 120

    def setUp(self) -> None:
        broker = make_broker(reactor, max_message=1 << 20)
        port = serve_for_test(self, broker)
        self.relay = LossyRelay(("127.0.0.1", port), loss=0.05, seed=11, clock=reactor, reorder=0.002)
        listening = reactor.listenUDP(0, self.relay, interface="127.0.0.1", maxPacketSize=65535)
        self.addCleanup(listening.stopListening)
        self.relay_port = str(listening.getHost().port)

    async def test_probe_gen(self) -> None:
        """msgsvc-probe --udp gen 10000000 receives ten million bytes, the pattern verified."""
        out, err, code = await run_cli("msgsvc.cli.probe", "127.0.0.1", self.relay_port, "--udp", "gen", "10000000")
        self.assertEqual((err, code), (b"", 0))
        self.assertRegex(out.decode(), r"\Areceived 10000000 bytes in .*\npattern verified\n\Z")
        self.assertGreater(self.relay.dropped, 100)

    async def test_client_send_receive(self) -> None:
        """msgsvc-client UDP send then receive of a 1 MiB file gives back the same bytes."""
        path = os.path.join(temp_dir(self), "message.bin")
        message = os.urandom(1 << 20)
        with open(path, "wb") as file:
            file.write(message)
        args = ("msgsvc.cli.queue_client", "127.0.0.1", self.relay_port, "UDP")
        out, err, code = await run_cli(*args, "send", path)
        self.assertEqual((out, err, code), (b"Sent: 1048576 bytes\n", b"", 0))
        out, err, code = await run_cli(*args, "receive")
        self.assertEqual((err, code), (b"", 0))
        self.assertEqual(out, b"Received:\n" + message)
        self.assertGreater(self.relay.dropped, 10)
