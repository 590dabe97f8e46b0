"""Crash safety with real processes: ``kill -9`` a busy server and check what survived."""

import os
import random
import sys

from twisted.internet import defer, reactor
from twisted.trial.unittest import SkipTest, TestCase

from msgsvc.client import ServerError, connect_tcp
from tests.helpers import CHECKOUT_ENV, ROOT, temp_dir
from tests.test_twistd import TWISTD, _Twistd

ROUNDS = 3


class _Ledger:
    """What the clients were told, across every round."""

    def __init__(self) -> None:
        self.sent: dict[int, bytes] = {}
        """Messages whose SEND got OK: id to payload."""
        self.handed: set[int] = set()
        """Messages a RECV or RESERVE reply gave to a client."""
        self.removed: set[int] = set()
        """Messages whose removal a client saw confirmed (a RECV reply, or OK to its ACK)."""
        self.confirmed = 0
        self.recv_in_flight = 0
        """RECVs sent but not answered when the server died: each may have taken a message with it."""


class CrashTests(TestCase):
    """SIGKILL in the middle of SENDs, RECVs, RESERVEs and ACKs from several clients."""

    timeout = 120

    def setUp(self):
        if not os.path.exists(TWISTD):
            raise SkipTest(f"no twistd script beside {sys.executable}")
        self.store = "sqlite:" + os.path.join(temp_dir(self), "msgsvc.sqlite")
        self.seed = random.randrange(1 << 30)
        self.random = random.Random(self.seed)
        self.ledger = _Ledger()

    def start(self) -> defer.Deferred:
        process = _Twistd()
        args = [TWISTD, "-n", "--pidfile=", "msgsvc", "--port", "0", "--max-clients", "0", "--ttr", "600"]
        transport = reactor.spawnProcess(process, TWISTD, [*args, "--store", self.store], env=CHECKOUT_ENV, path=ROOT)
        self.addCleanup(lambda: process.ended.called or transport.signalProcess("KILL"))
        process.transport = transport
        return process.started.addCallback(lambda port: (process, port))

    @defer.inlineCallbacks
    def test_kill_9_loses_nothing_confirmed(self):
        """After kill -9 and a restart, every confirmed message is kept or was handed out, none removed comes back."""
        highest = 0
        for round_number in range(ROUNDS):
            yield self.busy_then_killed(round_number)
            drained = yield self.restart_and_drain()
            context = f"seed {self.seed}, round {round_number}"
            ledger = self.ledger
            self.assertFalse(set(drained) & ledger.removed, f"confirmed removals delivered again ({context})")
            lost = set(ledger.sent) - ledger.removed - ledger.handed - set(drained)
            # RECV removes at once: one in flight when the process died may have committed its removal
            # without its reply reaching the client. RESERVE/ACK is the at-least-once way.
            self.assertLessEqual(len(lost), ledger.recv_in_flight, f"confirmed messages lost: {lost} ({context})")
            for message_id, payload in drained.items():
                if message_id in ledger.sent:
                    self.assertEqual(payload, ledger.sent[message_id], context)
            new_ids = [i for i in ledger.sent if i > highest] + [i for i in drained if i > highest]
            self.assertTrue(all(i > highest for i in new_ids), context)
            highest = max([highest, *ledger.sent, *drained])
            ledger.removed |= set(drained) | lost

    @defer.inlineCallbacks
    def busy_then_killed(self, round_number: int):
        process, port = yield self.start()
        kill_after = self.random.randrange(50, 400)
        killed = defer.Deferred()

        def confirmed() -> None:
            self.ledger.confirmed += 1
            if self.ledger.confirmed >= kill_after and not killed.called:
                process.transport.signalProcess("KILL")
                killed.callback(None)

        self.ledger.confirmed = 0
        self.ledger.recv_in_flight = 0
        clients = yield defer.gatherResults([connect_tcp(reactor, "127.0.0.1", port) for _ in range(7)])
        workers = [self.sender(c, f"r{round_number}c{n}", confirmed) for n, c in enumerate(clients[:4])]
        workers += [self.reserver(c, confirmed) for c in clients[4:6]]
        workers += [self.receiver(clients[6], confirmed)]
        yield defer.gatherResults([defer.ensureDeferred(worker) for worker in workers])
        yield process.ended

    async def sender(self, client, prefix: str, confirmed) -> None:
        for n in range(100_000):
            payload = f"{prefix}-{n}".encode()
            try:
                reply = await client.command("SEND", payload=payload)
            except Exception:
                return
            self.ledger.sent[int(reply.text.split()[0])] = payload
            confirmed()

    async def reserver(self, client, confirmed) -> None:
        while True:
            try:
                reply = await client.command("RESERVE", "0.05")
            except ServerError:
                continue
            except Exception:
                return
            self.ledger.handed.add(int(reply.text))
            try:
                await client.command("ACK", reply.text)
            except Exception:
                return
            self.ledger.removed.add(int(reply.text))
            confirmed()

    async def receiver(self, client, confirmed) -> None:
        while True:
            try:
                reply = await client.command("RECV", "0.05")
            except ServerError:
                continue
            except Exception:
                self.ledger.recv_in_flight += 1
                return
            self.ledger.handed.add(int(reply.text))
            self.ledger.removed.add(int(reply.text))
            confirmed()

    @defer.inlineCallbacks
    def restart_and_drain(self):
        process, port = yield self.start()
        client = yield connect_tcp(reactor, "127.0.0.1", port)
        drained: dict[int, bytes] = {}
        while True:
            try:
                reply = yield client.command("RECV")
            except ServerError:
                break
            self.assertNotIn(int(reply.text), drained, "a message id appeared twice")
            drained[int(reply.text)] = reply.payload
        process.transport.signalProcess("TERM")
        yield client.disconnected
        yield process.ended
        return drained
