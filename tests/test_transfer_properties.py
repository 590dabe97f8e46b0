"""Properties of UDP transfers: any datagrams with prefixes, and any pattern of loss."""

from __future__ import annotations

import os
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from msgsvc.protocol.reliable import BlockReceiver, BlockSender, BytesReader, TransferFailed
from msgsvc.protocol.transfer import Block, is_message, parse_message, split_prefixes
from tests.helpers import UdpHarness
from tests.test_properties import SETTINGS, STREAMS, items, new_broker, no_logged_failures

PREFIXES = st.lists(st.sampled_from([b"&key12345 ", b"&bad ", b"%t ", b"%u1 ", b"%a/b ", b"!abc "]), max_size=3)
BODIES = st.one_of(
    STREAMS,
    st.sampled_from([b"B 0 5\nabcde", b"B 1 2000\n" + b"x" * 800, b"A 3", b"A x", b"X gone", b"X"]),
    st.sampled_from([b"SEND @q {3000}\r\n", b"GEN 5000", b"RECV @q", b"LOGIN a b", b"GEN 100"]),
    st.binary(max_size=60),
)
DATAGRAMS = st.tuples(PREFIXES, BODIES).map(lambda parts: b"".join(parts[0]) + parts[1])


def well_formed(datagram: bytes) -> bool:
    """A reply, an event or a transfer message, each whole."""
    if is_message(datagram):
        prefixes = split_prefixes(datagram)
        assert prefixes.transfer is not None  # is_message saw %<id>
        return parse_message(prefixes.transfer, prefixes.rest) is not None
    return len(items(datagram)) == 1


class FrontEndProperties(SynchronousTestCase):
    """The UDP front end given datagrams with keys, transfer ids and transfer messages."""

    @SETTINGS
    @given(st.lists(DATAGRAMS, max_size=10))
    def test_any_prefixed_datagrams(self, datagrams: list[bytes]) -> None:
        """Every datagram sent back is well formed; after the idle timeout nothing is held; PING still works."""
        address = ("127.0.0.1", 50000)
        with no_logged_failures():
            broker = new_broker()
            udp = UdpHarness(broker)
            for datagram in datagrams:
                udp.send(datagram, address)
            assert isinstance(broker.clock, Clock)
            broker.clock.pump([5.0] * 140)  # past every retry and the idle timeout
            for data, _ in udp.transport.sent:
                self.assertTrue(well_formed(data), data)
            transfers = udp.protocol.transfers
            self.assertEqual((transfers.uploads, transfers.downloads, transfers.budget.held), ({}, {}, 0))
            udp.transport.sent.clear()
            udp.send(b"PING", address)
            self.assertEqual(udp.datagrams(address), [b"OK PONG\r\n"])
            udp.protocol.stopProtocol()


class LossProperties(SynchronousTestCase):
    """The sender and receiver under any pattern of lost and doubled datagrams."""

    @SETTINGS
    @given(st.integers(0, 20000), st.lists(st.sampled_from(["pass", "drop", "double"]), min_size=1, max_size=50))
    def test_exact_or_failed(self, size: int, pattern: list[str]) -> None:
        """The receiver gets exactly the bytes sent, in order, or the sender reports failure; never wrong bytes."""
        clock = Clock()
        data = os.urandom(size)
        got: list[bytes] = []
        outcome: list[TransferFailed | None] = []
        fate = iter(pattern * 1000)

        def path(deliver: Callable[[bytes], object]) -> Callable[[bytes], None]:
            def send(datagram: bytes) -> None:
                step = next(fate, "pass")
                for _ in range({"pass": 1, "drop": 0, "double": 2}[step]):
                    clock.callLater(0.001, deliver, datagram)

            return send

        def to_receiver(datagram: bytes) -> None:
            message = parse_message(b"t", datagram.partition(b" ")[2])
            assert isinstance(message, Block)
            receiver.received(message.seq, message.payload)

        def to_sender(datagram: bytes) -> None:
            sender.acknowledged(int(datagram.split()[2]))

        sender = BlockSender(clock, b"t", size, BytesReader(data), path(to_receiver), outcome.append)
        receiver = BlockReceiver(b"t", size, path(to_sender), got.append)
        sender.start()
        while not outcome and clock.seconds() < 3600:
            clock.advance(min(call.getTime() for call in clock.getDelayedCalls()) - clock.seconds())
        self.assertTrue(data.startswith(b"".join(got)))
        self.assertEqual(len(outcome), 1)
        if outcome[0] is None:
            self.assertEqual(b"".join(got), data)
