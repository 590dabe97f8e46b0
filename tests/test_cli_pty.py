"""The clients on a real terminal (a pty): Ctrl-C and Ctrl-D end them at once, and output keeps the typed line."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time

from twisted.trial.unittest import TestCase

from tests.helpers import CHECKOUT_ENV, ROOT, temp_dir

AT_ONCE = 1.0
"""Seconds a client may take to exit after Ctrl-C or Ctrl-D."""
PATIENCE = 20.0
"""Seconds to wait for things that are merely slow (start-up) before failing."""
TERMINAL_ENV = dict(CHECKOUT_ENV, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
"""A pty answers no cursor position requests; without this prompt_toolkit waits for them."""
ON_TTY = "import os, sys; os.login_tty(0); os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
"""Makes the pty the controlling terminal (so Ctrl-C is SIGINT in cooked mode), then runs the client."""


class Terminal:
    """A client running on a pty of 24 rows by 80 columns, typed at through its master side."""

    def __init__(self, testcase: TestCase, module: str, *args: str) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        argv = [sys.executable, "-c", ON_TTY, "-m", module, *args]
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=TERMINAL_ENV, cwd=ROOT)
        os.close(slave)
        testcase.addCleanup(self.close)
        self.output = b""
        self.closed = False

    def _read(self, deadline: float) -> bool:
        """Read what is there before ``deadline``; False at the deadline or once every writer is gone."""
        remaining = deadline - time.monotonic()
        if self.closed or remaining <= 0 or not select.select([self.master], [], [], remaining)[0]:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the slave side is closed by everyone
            data = b""
        self.closed = not data
        self.output += data
        return bool(data)

    def wait_for(self, text: bytes, after: bytes = b"", seconds: float = PATIENCE) -> None:
        """Read until ``text`` has been shown (after ``after``, when given)."""
        deadline = time.monotonic() + seconds
        while text not in self.output[self.output.find(after) + len(after) :] or after not in self.output:
            if not self._read(deadline):
                raise AssertionError(f"{text!r} not shown within {seconds}s; output: {self.output!r}")

    def type(self, keys: bytes) -> None:
        """Keys as the user presses them."""
        os.write(self.master, keys)

    def exit_status(self, seconds: float) -> int:
        """The exit status, which must come within ``seconds``; all output is read by then."""
        deadline = time.monotonic() + seconds
        while self._read(deadline):
            pass
        try:
            return self.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {seconds}s; output: {self.output!r}") from None

    def close(self) -> None:
        """Kill the client if it still runs."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(PATIENCE)
        os.close(self.master)


def screen(output: bytes) -> list[str]:
    """The lines a terminal shows after ``output``: text, CR/LF, cursor moves and erases (enough for prompt_toolkit)."""
    lines: list[list[str]] = [[]]
    row = column = 0
    for control, final, text in re.findall(rb"\x1b\[([0-9;?]*)([A-Za-z])|\x1b[^\[]|([^\x1b]+)", output):
        count = int(control) if control.isdigit() else 1
        if final == b"A":
            row = max(0, row - count)
        elif final == b"B":
            row += count
        elif final == b"C":
            column += count
        elif final == b"D":
            column = max(0, column - count)
        elif final in (b"J", b"K"):  # erase to the end of the screen / line
            del lines[row][column:]
            if final == b"J":
                del lines[row + 1 :]
        for char in text.decode("utf-8", "replace"):
            if char == "\r":
                column = 0
            elif char == "\n":
                row += 1
            elif char == "\b":
                column = max(0, column - 1)
            elif char >= " ":
                while len(lines) <= row:
                    lines.append([])
                line = lines[row]
                line.extend(" " * (column + 1 - len(line)))
                line[column] = char
                column += 1
        while len(lines) <= row:
            lines.append([])
    return ["".join(line).rstrip() for line in lines]


class Server:
    """``twistd -n msgsvc`` in a subprocess, on a free port."""

    def __init__(self, testcase: TestCase) -> None:
        argv = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile="]
        argv += ["msgsvc", "--port", "0", "--store", "memory", "--files", os.path.join(ROOT, "data")]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=CHECKOUT_ENV, cwd=temp_dir(testcase)
        )
        testcase.addCleanup(self.close)
        output = b""
        deadline = time.monotonic() + PATIENCE
        while not (found := re.search(rb"Server started on 127\.0\.0\.1:(\d+)", output)):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.process.stdout], [], [], remaining)[0]:
                raise AssertionError(f"no server within {PATIENCE}s: {output!r}")
            data = os.read(self.process.stdout.fileno(), 65536)
            if not data:
                raise AssertionError(f"the server ended: {output!r}")
            output += data
        self.port = int(found.group(1))

    def watch(self, testcase: TestCase, name: str) -> socket.socket:
        """A plain connection, named ``name``, that hears the room's events."""
        watcher = socket.create_connection(("127.0.0.1", self.port), timeout=PATIENCE)
        testcase.addCleanup(watcher.close)
        watcher.sendall(f"NAME {name}\r\n".encode())
        expect(watcher, b"Your name is set as")
        return watcher

    def close(self) -> None:
        """Kill the server if it still runs."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(PATIENCE)
        self.process.stdout.close()


def expect(connection: socket.socket, text: bytes) -> None:
    """Read from ``connection`` until ``text`` arrives (the socket's timeout bounds each read)."""
    received = b""
    while text not in received:
        data = connection.recv(65536)
        if not data:
            raise AssertionError(f"connection closed before {text!r}; got {received!r}")
        received += data


def blackhole(testcase: TestCase) -> socket.socket:
    """A listening socket that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    testcase.addCleanup(listener.close)
    return listener


class ChatKeysTests(TestCase):
    """msgsvc-chat's line editor on a terminal."""

    def start_chat(self) -> tuple[Server, socket.socket, Terminal]:
        """A server, a watcher in the room, and alice's msgsvc-chat at its prompt."""
        server = Server(self)
        watcher = server.watch(self, "watcher")
        chat = Terminal(self, "msgsvc.cli.chat", "127.0.0.1", str(server.port), "--name", "alice")
        chat.wait_for(b"alice>")
        expect(watcher, b"* JOIN alice")
        return server, watcher, chat

    def test_ctrl_c(self) -> None:
        """Ctrl-C ends the client at once with status 130, no traceback, and its connection closed."""
        _, watcher, chat = self.start_chat()
        chat.type(b"\x03")
        self.assertEqual(chat.exit_status(AT_ONCE), 130, chat.output)
        self.assertNotIn(b"Traceback", chat.output)
        expect(watcher, b"* LEAVE alice")

    def test_ctrl_d(self) -> None:
        """Ctrl-D on an empty line is the end of input: status 0 at once, no traceback, connection closed."""
        _, watcher, chat = self.start_chat()
        chat.type(b"\x04")
        self.assertEqual(chat.exit_status(AT_ONCE), 0, chat.output)
        self.assertNotIn(b"Traceback", chat.output)
        expect(watcher, b"* LEAVE alice")

    def test_ctrl_d_with_silent_server(self) -> None:
        """Ctrl-D ends the client at once even when the server never answers its QUIT."""
        listener = blackhole(self)
        chat = Terminal(self, "msgsvc.cli.chat", "127.0.0.1", str(listener.getsockname()[1]), "--name", "alice")
        listener.settimeout(PATIENCE)
        connection, _ = listener.accept()
        self.addCleanup(connection.close)
        connection.settimeout(PATIENCE)
        connection.sendall(b"OK msgsvc ready\r\n")
        expect(connection, b"NAME alice\r\n")
        connection.sendall(b"OK Your name is set as: alice\r\n")
        chat.wait_for(b"alice>")
        chat.type(b"\x04")
        self.assertEqual(chat.exit_status(AT_ONCE), 0, chat.output)
        expect(connection, b"QUIT\r\n")

    def test_keys_at_name_prompt(self) -> None:
        """At the name prompt Ctrl-C ends the client with 130 and Ctrl-D with 0, at once and without a traceback."""
        server = Server(self)
        for key, status in [(b"\x03", 130), (b"\x04", 0)]:
            chat = Terminal(self, "msgsvc.cli.chat", "127.0.0.1", str(server.port))
            chat.wait_for(b"Please enter a name:")
            chat.type(key)
            self.assertEqual(chat.exit_status(AT_ONCE), status, chat.output)
            self.assertNotIn(b"Traceback", chat.output)

    def test_chat_arrives_above_typed_line(self) -> None:
        """What another user says is printed above the prompt; the half-typed line stays as it was."""
        _, watcher, chat = self.start_chat()
        chat.type(b"half typed")
        chat.wait_for(b"half typed")
        watcher.sendall(b"SAY hello alice\r\n")
        chat.wait_for(b"watcher: hello alice")
        chat.type(b" more\r")
        chat.wait_for(b"alice>", after=b"half typed more ACK")  # Ctrl-D is end of input to the prompt only
        chat.type(b"\x04")
        self.assertEqual(chat.exit_status(AT_ONCE), 0, chat.output)
        shown = screen(chat.output)
        self.assertIn("watcher: hello alice", shown)
        self.assertIn("alice> half typed more", shown)

    def test_shutdown_above_typed_line(self) -> None:
        """The server's BYE is printed on its own line above the half-typed one; the client ends, status 1."""
        server, _, chat = self.start_chat()
        chat.type(b"half typed")
        chat.wait_for(b"half typed")
        server.process.send_signal(signal.SIGTERM)
        self.assertEqual(chat.exit_status(PATIENCE), 1, chat.output)
        shown = screen(chat.output)
        self.assertNotIn(b"Traceback", chat.output)
        self.assertIn("* the server closed the session (shutdown)", shown)
        self.assertEqual(shown[-2:], ["msgsvc-chat: the server ended the session", ""], shown)
        self.assertEqual([line for line in shown if "half typed" in line], ["alice> half typed"], shown)


class WaitingClientsTests(TestCase):
    """Ctrl-C while a client waits for a server that never answers."""

    def interrupt(self, module: str, *args: str) -> None:
        """Start the client against a silent server, press Ctrl-C once it is connected, and check how it ends."""
        listener = blackhole(self)
        client = Terminal(self, module, *[str(listener.getsockname()[1]) if arg == "PORT" else arg for arg in args])
        listener.settimeout(PATIENCE)
        connection, _ = listener.accept()
        self.addCleanup(connection.close)
        client.type(b"\x03")
        self.assertEqual(client.exit_status(AT_ONCE), 130, client.output)
        self.assertNotIn(b"Traceback", client.output)
        connection.settimeout(PATIENCE)
        self.assertEqual(connection.recv(100), b"", "the connection was not closed")

    def test_queue_client(self) -> None:
        """msgsvc-client waiting for the greeting ends at once on Ctrl-C, status 130, no traceback."""
        self.interrupt("msgsvc.cli.queue_client", "127.0.0.1", "PORT", "TCP", "receive")

    def test_tweet(self) -> None:
        """msgsvc-tweet waiting for the greeting ends at once on Ctrl-C, status 130, no traceback."""
        self.interrupt("msgsvc.cli.tweet", "-d", "127.0.0.1", "PORT")

    def test_chat_connecting(self) -> None:
        """msgsvc-chat still connecting (no line editor yet) ends at once on Ctrl-C, status 130."""
        self.interrupt("msgsvc.cli.chat", "127.0.0.1", "PORT", "--name", "alice")
