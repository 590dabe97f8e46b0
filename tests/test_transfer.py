"""The transfer messages and the sender and receiver machines, without sockets, on a Clock."""

from __future__ import annotations

import itertools
import os

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from msgsvc.protocol import transfer
from msgsvc.protocol.reliable import RETRIES, WINDOW, BlockReceiver, BlockSender, BytesReader, TransferFailed
from msgsvc.protocol.transfer import BLOCK, Abort, Ack, Block, Malformed, parse_message, split_prefixes
from tests.lossy import LossyLink, run_until


class MessageTests(TestCase):
    """Reading and writing the prefixes and the three transfer messages."""

    def test_prefixes(self) -> None:
        """Key and transfer id are taken off in order; the request follows."""
        prefixes = split_prefixes(b"&secret12 %t7 #a PING")
        self.assertEqual((prefixes.key, prefixes.transfer, prefixes.rest), (b"secret12", b"t7", b"#a PING"))
        self.assertEqual(split_prefixes(b"PING").rest, b"PING")

    def test_bad_prefixes(self) -> None:
        """A short key or an id with other characters is Malformed."""
        for bad in (b"&short PING", b"%a/b PING", b"% PING", b"&" + b"k" * 65 + b" PING"):
            self.assertRaises(Malformed, split_prefixes, bad)

    def test_round_trip(self) -> None:
        """What block, ack and abort write, parse_message reads back."""
        data = transfer.block(b"t", 2, 2500, b"x" * 100)
        self.assertEqual(parse_message(b"t", data.partition(b" ")[2]), Block(b"t", 2, 2500, b"x" * 100))
        self.assertEqual(parse_message(b"t", transfer.ack(b"t", 5).partition(b" ")[2]), Ack(b"t", 5))
        self.assertEqual(parse_message(b"t", transfer.abort(b"t", "gone").partition(b" ")[2]), Abort(b"t", "gone"))

    def test_request_is_not_a_message(self) -> None:
        """A request after %<id> is None: it is run, not taken as a block."""
        self.assertIsNone(parse_message(b"t", b"#a GEN 5000"))
        self.assertFalse(transfer.is_message(b"%t #a GEN 5000"))
        self.assertTrue(transfer.is_message(b"%t A 3"))

    def test_block_size_checked(self) -> None:
        """A block whose payload does not match its place in the total is Malformed."""
        self.assertRaises(Malformed, parse_message, b"t", b"B 0 5000\n" + b"x" * 10)
        self.assertRaises(Malformed, parse_message, b"t", b"B 9 5000\n" + b"x" * 10)
        self.assertRaises(Malformed, parse_message, b"t", b"B 0 " + b"9" * 16 + b"\nx")

    @given(st.binary(max_size=200))
    def test_any_bytes(self, data: bytes) -> None:
        """Any bytes after an id are a message, a request (None) or Malformed, never another exception."""
        try:
            parse_message(b"t", data)
        except Malformed:
            pass


class Pair:
    """A sender and a receiver joined by two lossy links."""

    def __init__(self, clock: Clock, data: bytes, seed: int, loss: float = 0.1) -> None:
        self.received: list[bytes] = []
        self.outcome: list[TransferFailed | None] = []
        self.to_receiver = LossyLink(clock, self._block, seed, loss)
        self.to_sender = LossyLink(clock, self._ack, seed + 1, loss)
        self.sender = BlockSender(clock, b"t", len(data), BytesReader(data), self.to_receiver.send, self.outcome.append)
        self.receiver = BlockReceiver(b"t", len(data), self.to_sender.send, self.received.append)

    def _block(self, datagram: bytes) -> None:
        message = parse_message(b"t", datagram.partition(b" ")[2])
        assert isinstance(message, Block)
        self.receiver.received(message.seq, message.payload)

    def _ack(self, datagram: bytes) -> None:
        message = parse_message(b"t", datagram.partition(b" ")[2])
        assert isinstance(message, Ack)
        self.sender.acknowledged(message.next)


class MachineTests(TestCase):
    """BlockSender and BlockReceiver over paths that lose, reorder and duplicate."""

    def test_mebibyte_over_lossy_path(self) -> None:
        """1 MiB crosses a path with 10% loss, reordering and duplicates exactly, and the sender finishes."""
        clock = Clock()
        data = os.urandom(1 << 20)
        pair = Pair(clock, data, seed=7)
        pair.sender.start()
        run_until(clock, lambda: bool(pair.outcome))
        self.assertEqual(pair.outcome, [None])
        self.assertEqual(b"".join(pair.received), data)
        self.assertGreater(pair.to_receiver.dropped, 50)

    def test_empty_and_one_block(self) -> None:
        """Nothing and exactly one block's worth both arrive."""
        for size in (0, BLOCK, BLOCK + 1):
            clock = Clock()
            data = os.urandom(size)
            pair = Pair(clock, data, seed=size, loss=0.0)
            pair.sender.start()
            run_until(clock, lambda pair=pair: bool(pair.outcome))  # type: ignore[misc]
            self.assertEqual((pair.outcome, b"".join(pair.received)), ([None], data))

    def test_silent_peer_is_not_flooded(self) -> None:
        """To a peer that never acknowledges: one window, then one block per timeout, then failure."""
        clock = Clock()
        sent: list[bytes] = []
        outcome: list[TransferFailed | None] = []
        sender = BlockSender(clock, b"t", BLOCK * 100, BytesReader(b"x" * BLOCK * 100), sent.append, outcome.append)
        sender.start()
        self.assertEqual(len(sent), WINDOW)
        clock.advance(0.5)
        self.assertEqual(len(sent), WINDOW + 1)
        clock.pump([4.0] * (RETRIES + 1))
        self.assertEqual(len(sent), WINDOW + RETRIES)
        self.assertEqual(len(outcome), 1)
        self.assertIsInstance(outcome[0], TransferFailed)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_backoff_doubles(self) -> None:
        """Each retransmission waits twice as long as the one before."""
        clock = Clock()
        times: list[float] = []
        sender = BlockSender(clock, b"t", 10, BytesReader(b"x" * 10), lambda _: times.append(clock.seconds()), print)
        sender.start()
        clock.pump([0.25] * 16)
        gaps = [round(b - a, 2) for a, b in itertools.pairwise(times)]
        self.assertEqual(gaps, [0.5, 1.0, 2.0])

    def test_fast_retransmit(self) -> None:
        """Three duplicate acknowledgements resend the missing block at once."""
        clock = Clock()
        sent: list[bytes] = []
        sender = BlockSender(clock, b"t", BLOCK * 10, BytesReader(b"x" * BLOCK * 10), sent.append, print)
        sender.start()
        sender.acknowledged(1)
        before = len(sent)
        for _ in range(3):
            sender.acknowledged(1)
        self.assertEqual(sent[before:][-1][:12], b"%t B 1 12000")

    def test_receiver_keeps_window(self) -> None:
        """Blocks more than two windows ahead are dropped, duplicates ignored, and every block is acknowledged."""
        acks: list[bytes] = []
        got: list[bytes] = []
        receiver = BlockReceiver(b"t", BLOCK * 100, acks.append, got.append)
        receiver.received(2 * WINDOW + 5, b"y" * BLOCK)
        receiver.received(1, b"b" * BLOCK)
        receiver.received(0, b"a" * BLOCK)
        receiver.received(0, b"a" * BLOCK)
        self.assertEqual(got, [b"a" * BLOCK, b"b" * BLOCK])
        self.assertEqual(acks, [b"%t A 0\r\n", b"%t A 0\r\n", b"%t A 2\r\n", b"%t A 2\r\n"])
        self.assertEqual(receiver.held, 0)

    def test_delayed_acknowledgements(self) -> None:
        """In order, every second block is acknowledged, and the last one always."""
        acks: list[bytes] = []
        receiver = BlockReceiver(b"t", BLOCK * 5, acks.append, lambda _: None)
        for seq in range(5):
            receiver.received(seq, b"z" * BLOCK)
        self.assertEqual(acks, [b"%t A 2\r\n", b"%t A 4\r\n", b"%t A 5\r\n"])

    def test_abort_ends_sender(self) -> None:
        """An abort from the peer ends the sender with a TransferFailed naming the reason."""
        clock = Clock()
        outcome: list[TransferFailed | None] = []
        sender = BlockSender(clock, b"t", 5000, BytesReader(b"x" * 5000), lambda _: None, outcome.append)
        sender.start()
        sender.abort("no such transfer")
        self.assertIn("no such transfer", str(outcome[0]))
        self.assertEqual(clock.getDelayedCalls(), [])
