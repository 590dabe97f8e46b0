"""msgsvc-chat in plain (piped) mode against a real server."""

import os
import sys

from twisted.internet import defer, reactor
from twisted.internet.protocol import ProcessProtocol

from msgsvc.client import connect_tcp
from tests.helpers import CHECKOUT_ENV, ROOT, temp_dir
from tests.test_sockets import RealServer


class _Chatter(ProcessProtocol):
    """Drives msgsvc-chat through its standard input and watches its output."""

    def __init__(self) -> None:
        self.output = b""
        self.errors = b""
        self.ended: defer.Deferred[int] = defer.Deferred()
        self._waits: list[tuple[bytes, defer.Deferred]] = []

    def expect(self, text: bytes) -> defer.Deferred:
        """Fires once ``text`` has appeared in the output."""
        waiting: defer.Deferred = defer.Deferred()
        self._waits.append((text, waiting))
        self._check()
        return waiting

    def outReceived(self, data: bytes) -> None:
        self.output += data
        self._check()

    def errReceived(self, data: bytes) -> None:
        self.errors += data

    def _check(self) -> None:
        for text, waiting in list(self._waits):
            if text in self.output:
                self._waits.remove((text, waiting))
                waiting.callback(None)

    def processEnded(self, reason) -> None:
        for text, waiting in self._waits:
            waiting.errback(AssertionError(f"never printed {text!r}; output: {self.output!r} {self.errors!r}"))
        self.ended.callback(reason.value.exitCode)


class ChatCliTests(RealServer):
    """Scripted msgsvc-chat sessions."""

    def spawn(self, *args: str) -> _Chatter:
        chatter = _Chatter()
        argv = [sys.executable, "-m", "msgsvc.cli.chat", "127.0.0.1", str(self.port), *args]
        self.process = reactor.spawnProcess(chatter, sys.executable, argv, env=CHECKOUT_ENV, path=ROOT)
        return chatter

    @defer.inlineCallbacks
    def test_plain_mode_conversation(self):
        """Piped lines are said, /commands are sent, events print, end of input quits cleanly."""
        heard = []
        bob = yield connect_tcp(reactor, "127.0.0.1", self.port, heard.append)
        self.addCleanup(bob.transport.loseConnection)
        yield bob.command("NAME", "bob")
        chatter = self.spawn()
        self.process.write(b"alice\nhello bob\n/who\n")
        yield chatter.expect(b"Your name is set as: alice\nhello bob ACK\n")
        yield chatter.expect(b"bob tcp 127.0.0.1:")
        yield bob.command("SAY", "hi alice")
        yield chatter.expect(b"bob: hi alice\n")
        saved = os.path.join(temp_dir(self), "saved")
        self.process.write(b"/get message1.txt " + saved.encode() + b"\n/list\n/nope\n")
        yield chatter.expect(b"saved 41 bytes to ")
        with open(saved, "rb") as copy, open(os.path.join(ROOT, "data", "message1.txt"), "rb") as original:
            self.assertEqual(copy.read(), original.read())
        yield chatter.expect(b"message1.txt 41\n")
        yield chatter.expect(b"error: unknown command 'NOPE'")
        self.process.closeStdin()
        code = yield chatter.ended
        self.assertEqual(code, 0, chatter.errors)
        self.assertEqual(
            [(event.name, event.args) for event in heard],
            [("JOIN", "alice"), ("CHAT", "alice hello bob"), ("LEAVE", "alice")],
        )

    async def test_refused_name_is_an_error(self) -> None:
        """From a pipe a taken name ends the client with one line and status 1; the next line is not a name."""
        bob = await connect_tcp(reactor, "127.0.0.1", self.port)
        self.addCleanup(bob.transport.loseConnection)
        await bob.command("NAME", "bob")
        for args, script in [((), b"bob\nalice\nhello\n"), (("--name", "bob"), b"hello\n")]:
            chatter = self.spawn(*args)
            self.process.write(script)
            self.process.closeStdin()
            code = await chatter.ended
            self.assertEqual((code, chatter.errors), (1, b"msgsvc-chat: name bob refused: bob is already in use\n"))
            self.assertNotIn(b"Your name is set as", chatter.output)

    @defer.inlineCallbacks
    def test_udp_plain_mode(self):
        """Over UDP the same script works, and the session ends with the input."""
        heard = []
        bob = yield connect_tcp(reactor, "127.0.0.1", self.port, heard.append)
        self.addCleanup(bob.transport.loseConnection)
        yield bob.command("NAME", "bob")
        chatter = self.spawn("--udp", "--name", "carol")
        self.process.write(b"over udp\n")
        yield chatter.expect(b"over udp ACK\n")
        self.process.closeStdin()
        code = yield chatter.ended
        self.assertEqual(code, 0, chatter.errors)
        self.assertEqual(
            [(e.name, e.args) for e in heard], [("JOIN", "carol"), ("CHAT", "carol over udp"), ("LEAVE", "carol")]
        )

    @defer.inlineCallbacks
    def test_unreachable(self):
        """An unreachable server is one line on stderr and exit status 1."""
        yield self.service.getServiceNamed("listeners").stopService()
        chatter = self.spawn("--name", "x")
        self.process.closeStdin()
        code = yield chatter.ended
        self.assertEqual(code, 1)
        self.assertIn(b"msgsvc-chat: cannot reach", chatter.errors)
