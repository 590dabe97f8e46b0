"""msgsvc-forum from a pipe against a real server."""

from __future__ import annotations

import os
import socket
import sys

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from msgsvc.client import connect_tcp
from tests.helpers import CHECKOUT_ENV, make_broker, serve_for_test, temp_dir

BINARY = bytes(range(256)) * 40 + b"\r\n\x00{3}\r\n"
"""A local file that is not text: every byte value, line endings and a literal marker."""


class _Piped(ProcessProtocol):
    """Feeds a script to standard input and collects both outputs and the exit status."""

    def __init__(self, script: bytes) -> None:
        self.script = script
        self.out = b""
        self.err = b""
        self.ended: Deferred[tuple[str, str, int]] = Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self.script)
        self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def errReceived(self, data: bytes) -> None:
        self.err += data

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback((self.out.decode(), self.err.decode(), getattr(reason.value, "exitCode", -1)))


def run_forum(port: int, script: bytes, *args: str, cwd: str) -> Deferred[tuple[str, str, int]]:
    """Run ``python -m msgsvc.cli.forum 127.0.0.1 PORT args`` in ``cwd`` with ``script`` piped in."""
    piped = _Piped(script)
    argv = [sys.executable, "-m", "msgsvc.cli.forum", "127.0.0.1", str(port), *args]
    reactor.spawnProcess(piped, sys.executable, argv, env=CHECKOUT_ENV, path=cwd)
    return piped.ended


class ForumCliTests(TestCase):
    """``msgsvc-forum`` sessions from a pipe, over TCP."""

    args: tuple[str, ...] = ()

    def setUp(self) -> None:
        self.broker = make_broker(reactor, password_cost=1, max_clients=0)
        self.port = serve_for_test(self, self.broker)
        self.cwd = temp_dir(self)

    def forum(self, script: bytes) -> Deferred[tuple[str, str, int]]:
        """One piped session in the test's directory."""
        return run_forum(self.port, script, *self.args, cwd=self.cwd)

    async def register(self, user: str, password: str) -> None:
        """Create an account through the CLI."""
        out, err, code = await self.forum(f"{user}\n{password}\ny\nXIT\n".encode())
        self.assertEqual((out, err, code), ("Welcome to the forum\nbye\n", "", 0))

    async def test_register_then_session(self) -> None:
        """An unknown user is registered after y; CRT, MSG, EDT, LST, RDT and XIT print their replies."""
        script = b"alice\npw\ny\nCRT t\nmsg t hello there\nMSG t second\nEDT t 2 edited\nLST\nRDT t\nXIT\n"
        out, err, code = await self.forum(script)
        self.assertEqual((err, code), ("", 0))
        self.assertEqual(
            out,
            "Welcome to the forum\nThread t created\nMessage 1 posted to t\nMessage 2 posted to t\n"
            "Message 2 edited\nt\n1 alice: hello there\n2 alice: edited\nbye\n",
        )

    async def test_login_and_delete_remove(self) -> None:
        """A registered user logs in; DLT renumbers, RMV removes, and the end of input leaves with status 0."""
        await self.register("bob", "secret")
        script = b"bob\nsecret\nCRT t\nMSG t one\nMSG t two\nDLT t 1\nRDT t\nRMV t\nLST\n"
        out, err, code = await self.forum(script)
        self.assertEqual((err, code), ("", 0))
        self.assertEqual(
            out,
            "Welcome to the forum\nThread t created\nMessage 1 posted to t\nMessage 2 posted to t\n"
            "Message 1 deleted\n1 bob: two\nThread t removed\nno threads\n",
        )

    async def test_declined_registration_asks_again(self) -> None:
        """Answering n to the registration question asks for another user name."""
        await self.register("bob", "secret")
        out, err, code = await self.forum(b"nobody\npw\nn\nbob\nsecret\nXIT\n")
        self.assertEqual((out, err, code), ("Welcome to the forum\nbye\n", "", 0))

    async def test_wrong_password_retried(self) -> None:
        """A wrong password is said and asked for again; the right one then logs in."""
        await self.register("bob", "secret")
        out, err, code = await self.forum(b"bob\nwrong\nsecret\nLST\n")
        self.assertEqual((out, err, code), ("error: Invalid password\nWelcome to the forum\nno threads\n", "", 0))

    async def test_wrong_password_three_times(self) -> None:
        """Three wrong passwords end the client with status 1 and one line on stderr."""
        await self.register("bob", "secret")
        out, err, code = await self.forum(b"bob\nw1\nw2\nw3\nsecret\n")
        self.assertEqual((out, code), ("error: Invalid password\n" * 3, 1))
        self.assertEqual(err, "msgsvc-forum: too many wrong passwords for bob\n")

    async def test_in_use(self) -> None:
        """A user logged in elsewhere is refused: one line on stderr, status 1."""
        await self.register("bob", "secret")
        other = await connect_tcp(reactor, "127.0.0.1", self.port)
        self.addCleanup(other.abort)
        await other.command("LOGIN", "bob", "secret")
        out, err, code = await self.forum(b"bob\nsecret\nLST\n")
        self.assertEqual((out, err, code), ("", "msgsvc-forum: bob has already logged in\n", 1))

    async def test_input_ends_before_login(self) -> None:
        """From a pipe, input that ends at a login prompt is an error."""
        out, err, code = await self.forum(b"bob\n")
        self.assertEqual((out, err, code), ("", "msgsvc-forum: the input ended before logging in\n", 1))

    async def test_refused_and_unknown_commands_go_on(self) -> None:
        """Refusals, unknown verbs, bad usage and a missing local file print one line each; the session goes on."""
        script = b"bob\npw\ny\nRDT nope\nDLT\nFOO\nUPD t\nUPD t missing.bin\nCRT t\nXIT\n"
        out, err, code = await self.forum(script)
        self.assertEqual((err, code), ("", 0))
        lines = out.splitlines()
        self.assertEqual(lines[:2], ["Welcome to the forum", "error: Thread nope does not exist"])
        self.assertTrue(lines[2].startswith("error: "), lines[2])
        self.assertEqual(
            lines[3:],
            [
                "error: unknown command FOO; the commands are CRT MSG DLT EDT LST RDT UPD DWN RMV XIT",
                "usage: UPD <thread> <file>",
                "error: cannot read missing.bin: No such file or directory",
                "Thread t created",
                "bye",
            ],
        )

    async def test_upload_download(self) -> None:
        """UPD sends a binary local file; DWN in another directory saves it byte-identical."""
        with open(os.path.join(self.cwd, "blob.bin"), "wb") as file:
            file.write(BINARY)
        script = b"bob\npw\ny\nCRT t\nupd t blob.bin\nRDT t\nXIT\n"
        out, err, code = await self.forum(script)
        self.assertEqual((err, code), ("", 0))
        self.assertEqual(
            out,
            f"Welcome to the forum\nThread t created\nblob.bin uploaded to t ({len(BINARY)} bytes)\n"
            "bob uploaded blob.bin\nbye\n",
        )
        self.cwd = temp_dir(self)
        out, err, code = await self.forum(b"bob\npw\nDWN t blob.bin\nDWN t nope.bin\nXIT\n")
        self.assertEqual((err, code), ("", 0))
        self.assertEqual(
            out,
            f"Welcome to the forum\nsaved {len(BINARY)} bytes to blob.bin\n"
            "error: nope.bin has not been uploaded to t\nbye\n",
        )
        with open(os.path.join(self.cwd, "blob.bin"), "rb") as file:
            self.assertEqual(file.read(), BINARY)
        self.assertFalse(os.path.exists(os.path.join(self.cwd, "nope.bin")))

    async def test_unreachable(self) -> None:
        """A server that cannot be reached gives a one-line error and status 1."""
        with socket.socket() as closed:  # bound, never listening: connecting is refused
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        out, err, code = await run_forum(port, b"bob\npw\n", *self.args, cwd=self.cwd)
        self.assertEqual((out, code), ("", 1))
        self.assertTrue(err.startswith("msgsvc-forum: "), err)
        self.assertEqual(len(err.splitlines()), 1, err)


class UdpForumCliTests(TestCase):
    """``msgsvc-forum --udp``: the same small session over UDP."""

    def setUp(self) -> None:
        self.broker = make_broker(reactor, password_cost=1, max_clients=0)
        self.port = serve_for_test(self, self.broker)
        self.cwd = temp_dir(self)

    async def test_session(self) -> None:
        """Register, post, upload, read, download and leave over UDP; large files go as transfers."""
        owner = await connect_tcp(reactor, "127.0.0.1", self.port)
        self.addCleanup(owner.abort)
        await owner.command("REGISTER", "bob", "pw")
        await owner.command("CRT", "big")
        await owner.command("UPD", "big", "big.bin", payload=b"x" * 70000)
        with open(os.path.join(self.cwd, "small.bin"), "wb") as file:
            file.write(BINARY[:300])
        with open(os.path.join(self.cwd, "big.bin"), "wb") as file:
            file.write(b"x" * 70000)
        script = b"alice\npw\ny\nCRT t\nMSG t hi\nUPD t small.bin\nUPD t big.bin\nRDT t\n"
        script += b"DWN t small.bin\nDWN big big.bin\nLST\nXIT\n"
        out, err, code = await run_forum(self.port, script, "--udp", cwd=self.cwd)
        self.assertEqual((err, code), ("", 0))
        lines = out.splitlines()
        self.assertEqual(
            lines[:4],
            [
                "Welcome to the forum",
                "Thread t created",
                "Message 1 posted to t",
                "small.bin uploaded to t (300 bytes)",
            ],
        )
        self.assertEqual(lines[4], "big.bin uploaded to t (70000 bytes)")
        self.assertEqual(lines[5:8], ["1 alice: hi", "alice uploaded small.bin", "alice uploaded big.bin"])
        self.assertEqual(lines[8:10], ["saved 300 bytes to small.bin", "saved 70000 bytes to big.bin"])
        self.assertEqual(lines[10:], ["big", "t", "bye"])
        with open(os.path.join(self.cwd, "small.bin"), "rb") as file:
            self.assertEqual(file.read(), BINARY[:300])
