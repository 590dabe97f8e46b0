"""The UDP rows' client: one timed transfer through the client library, printed as a JSON line.

``python -m benchmarks.udp --port P --bytes N --transport udp --loss 0.05 --op gen``
connects with :func:`msgsvc.client.connect_udp` (or ``connect_tcp`` for
``--transport tcp``), times ``GEN N`` (``--op gen``, the reply checked to hold
N bytes) or a ``SEND`` of an N-byte message (``--op send``), ``--count`` times
one after the other, and prints ``{"bytes": N * count, "seconds": s,
"client_cpu_seconds": c}`` (plus the relay's ``forwarded`` and ``dropped``
counts). With ``--loss`` above 0 the client talks
to a relay in this process, on 127.0.0.1, that forwards datagrams between it
and the server and drops each one (either way) with that probability, from a
seeded random generator. Connecting (the cookie, the TCP greeting) is not
timed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from typing import Any

from twisted.internet.protocol import DatagramProtocol

from benchmarks.servers import cpu_seconds

MAX_PACKET = 65535


class LossyRelay(DatagramProtocol):
    """Forwards datagrams between one client and the server, dropping each with probability ``loss``.

    With a ``clock`` and ``reorder`` > 0, one datagram in four waits ``reorder`` seconds, so it
    arrives after some sent later (the reliable-transfer tests use that).
    """

    noisy = False

    def __init__(
        self, server: tuple[str, int], loss: float, seed: int, clock: Any = None, reorder: float = 0.0
    ) -> None:
        self.server = server
        self.loss = loss
        self.random = random.Random(seed)
        self.clock = clock
        self.reorder = reorder
        self.client: tuple[str, int] | None = None
        self.forwarded = self.dropped = 0

    def datagramReceived(self, datagram: bytes, address: tuple[str, int]) -> None:
        if address == self.server:
            target = self.client
        else:
            self.client, target = address, self.server
        if target is None:
            return
        if self.random.random() < self.loss:
            self.dropped += 1
            return
        self.forwarded += 1
        if self.clock is not None and self.reorder and self.random.random() < 0.25:
            self.clock.callLater(self.reorder, self._forward, datagram, target)
        else:
            self._forward(datagram, target)

    def _forward(self, datagram: bytes, target: tuple[str, int]) -> None:
        if self.transport is not None:
            self.transport.write(datagram, target)


async def _measure(reactor, args: argparse.Namespace) -> dict:
    from msgsvc.client import connect_tcp, connect_udp

    host, port = "127.0.0.1", args.port
    relay = None
    if args.transport == "udp" and args.loss > 0:
        relay = LossyRelay((host, port), args.loss, args.seed)
        listening = reactor.listenUDP(0, relay, interface=host, maxPacketSize=MAX_PACKET)
        port = listening.getHost().port
    if args.transport == "udp":
        client = await connect_udp(reactor, host, port)
    else:
        client = await connect_tcp(reactor, host, port)
    payload = bytes(range(256)) * (args.bytes // 256) + b"x" * (args.bytes % 256) if args.op == "send" else None
    server_cpu = cpu_seconds(args.server_pid) if args.server_pid else None
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.count):
        if args.op == "gen":
            reply = await client.command("GEN", str(args.bytes))
            received = len(reply.payload or b"")
            if received != args.bytes:
                raise RuntimeError(f"GEN {args.bytes} returned {received} bytes")
        else:
            reply = await client.command("SEND", "@udp-bench", payload=payload)
            if reply.kind != "OK":
                raise RuntimeError(f"SEND was answered {reply.kind} {reply.text}")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    result = {"bytes": args.bytes * args.count, "seconds": seconds, "client_cpu_seconds": cpu}
    if server_cpu is not None:
        result["server_cpu_seconds"] = cpu_seconds(args.server_pid) - server_cpu
    if relay is not None:
        result.update(forwarded=relay.forwarded, dropped=relay.dropped)
    if args.transport == "tcp":
        client.abort()
    else:
        await client.close()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks.udp``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.udp", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="the server's port (TCP and UDP)")
    parser.add_argument("--bytes", type=int, required=True, help="bytes to GEN, or the size of the message to SEND")
    parser.add_argument("--transport", choices=["udp", "tcp"], default="udp")
    parser.add_argument("--op", choices=["gen", "send"], default="gen")
    parser.add_argument("--count", type=int, default=1, help="transfers, one after the other (timed together)")
    parser.add_argument("--loss", type=float, default=0.0, help="probability that the relay drops a datagram")
    parser.add_argument("--server-pid", type=int, help="also report this process's CPU seconds during the transfers")
    parser.add_argument("--seed", type=int, default=1, help="seed of the relay's random generator")
    args = parser.parse_args(argv)
    if not 0 <= args.loss < 1:
        parser.error("--loss must be in [0, 1)")
    if args.count < 1:
        parser.error("--count must be at least 1")

    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    outcome: dict = {}

    def done(result: object) -> None:
        outcome["result"] = result
        reactor.stop()

    reactor.callWhenRunning(lambda: Deferred.fromCoroutine(_measure(reactor, args)).addBoth(done))
    reactor.run()
    result = outcome.get("result")
    if not isinstance(result, dict):
        print(f"benchmarks.udp: {getattr(result, 'value', result)!r}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
