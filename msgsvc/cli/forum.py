# -*- test-case-name: tests.test_forum_cli -*-
"""``msgsvc-forum HOST PORT [--udp | --tls [--cafile FILE]]``: the forum from a terminal.

It asks for a user name and a password and logs in; an unknown user is registered after
asking (``y``); a wrong password is asked for again (at most :data:`PASSWORD_TRIES` times).
Then it takes the forum commands as typed, one a line, in any case: ``CRT``, ``MSG``,
``DLT``, ``EDT``, ``LST``, ``RDT``, ``RMV``, ``XIT``, and ``UPD THREAD FILE`` (uploads the
local file FILE) / ``DWN THREAD FILE`` (saves the download as FILE in the current
directory). A refused command prints ``error: <text>`` and the session goes on.

Prompts appear only on a terminal, where the password is read without echo; from a pipe
each prompt is answered by the next input line. Exit status: 0 after ``XIT`` or the end of
input; 1 with one line on standard error when the server cannot be reached, does not
answer, ends the session, refuses the login (``in-use``, too many wrong passwords), or the
input ends before logging in from a pipe; 130 after Ctrl-C (see :mod:`msgsvc.cli.common`).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from msgsvc.cli.arguments import add_transport_arguments, transport_of
from msgsvc.cli.common import CliError, Commands, Interrupted, converse, farewell, run, use_terminal
from msgsvc.cli.console import TerminalConsole
from msgsvc.cli.display import save
from msgsvc.client import Reply, ServerError, TcpClient, UdpClient

ReadLine = Callable[[str], Awaitable[str | None]]
"""Asks for one line with a prompt; None at end of input."""

PASSWORD_TRIES = 3
"""Wrong passwords accepted before giving up."""
SERVER_VERBS = ("CRT", "MSG", "DLT", "EDT", "LST", "RDT", "RMV")
"""Typed commands sent to the server as they are (the verb upper-cased)."""
COMMANDS = "CRT MSG DLT EDT LST RDT UPD DWN RMV XIT"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="msgsvc-forum", description="Use the forum of a msgsvc server.")
    parser.add_argument("host", help="server host, e.g. 127.0.0.1")
    parser.add_argument("port", type=int, help="server port, e.g. 55556")
    add_transport_arguments(parser)
    args = parser.parse_args(argv)
    args.transport = transport_of(parser, args)
    return args


def show(verb: str, words: list[str], reply: Reply) -> str:
    """A reply as a person reads it."""
    if reply.kind == "DATA":
        text = reply.payload.decode("utf-8", "replace").rstrip("\r\n").replace("\r\n", "\n")
        if text:
            return text
        return "no threads" if verb == "LST" else f"thread {words[0] if words else ''} is empty"
    if verb == "MSG" and reply.text.isdigit() and words:
        return f"Message {reply.text} posted to {words[0]}"
    return reply.text


class ForumSession:
    """One user's forum session: logs in, then turns typed lines into commands and prints the replies."""

    def __init__(
        self,
        client: Commands,
        read_line: ReadLine,
        read_password: ReadLine,
        say: Callable[[str], None],
        interactive: bool = False,
    ) -> None:
        self.client = client
        self.read_line = read_line
        self.read_password = read_password
        self.say = say
        self.interactive = interactive
        """On a terminal the end of input at a login prompt is leaving (exit 0), from a pipe an error."""
        self.user: str | None = None
        self.said_goodbye = False
        """Whether XIT was answered: the server has ended the session."""

    async def run(self) -> None:
        """Log in, then take commands until XIT or the end of input."""
        if await self.log_in():
            await self.converse()

    async def _ask(self, read: ReadLine, prompt: str) -> str | None:
        """One answer; None when the input ended (an error from a pipe)."""
        answer = await read(prompt)
        if answer is None and not self.interactive:
            raise CliError("the input ended before logging in")
        return None if answer is None else answer.strip()

    async def log_in(self) -> bool:
        """Ask until logged in (True), or the input ends on a terminal (False)."""
        while True:
            user = await self._ask(self.read_line, "Username: ")
            if user is None:
                return False
            if not user:
                continue
            outcome = await self._password(user)
            if outcome is not None:
                return outcome

    async def _password(self, user: str) -> bool | None:
        """Log ``user`` in, asking for the password; None to ask for another user name."""
        for _ in range(PASSWORD_TRIES):
            password = await self._ask(self.read_password, "Password: ")
            if password is None:
                return False
            try:
                reply = await self.client.command("LOGIN", user, password)
            except ServerError as error:
                if error.code == "no-user":
                    return await self._register(user, password)
                if error.code == "in-use":
                    raise CliError(error.text) from None
                self.say(f"error: {error.text}")
                if error.code != "auth":
                    return None
                continue
            return self._welcome(user, reply)
        raise CliError(f"too many wrong passwords for {user}")

    async def _register(self, user: str, password: str) -> bool | None:
        """Offer to create the account; None to ask for another user name."""
        answer = await self._ask(self.read_line, "no such user; register it? (y/n) ")
        if answer is None:
            return False
        if answer.lower() not in ("y", "yes"):
            return None
        try:
            reply = await self.client.command("REGISTER", user, password)
        except ServerError as error:
            self.say(f"error: {error.text}")
            return None
        return self._welcome(user, reply)

    def _welcome(self, user: str, reply: Reply) -> bool:
        self.user = user
        self.say(reply.text)
        return True

    async def converse(self) -> None:
        """Run typed commands until XIT or the end of input."""
        while True:
            line = await self.read_line("forum> ")
            if line is None:
                return
            if line.strip() and not await self.handle(line):
                return

    async def handle(self, line: str) -> bool:
        """Run one typed line; False after XIT."""
        verb, *words = line.split()
        verb = verb.upper()
        try:
            if verb in ("XIT", "QUIT", "EXIT"):
                self.say((await self.client.command("XIT")).text)
                self.said_goodbye = True
                return False
            if verb == "UPD":
                await self.upload(words)
            elif verb == "DWN":
                await self.download(words)
            elif verb in SERVER_VERBS:
                rest = line.strip().split(None, 1)[1:]
                self.say(show(verb, words, await self.client.command(verb, *rest)))
            else:
                self.say(f"error: unknown command {verb}; the commands are {COMMANDS}")
        except ServerError as error:
            self.say(f"error: {error.text}")
        except ValueError as error:  # a command too big for one datagram, over UDP
            self.say(f"error: {error}")
        return True

    async def upload(self, words: list[str]) -> None:
        """UPD THREAD FILE: send the local file's bytes."""
        if len(words) != 2:
            self.say("usage: UPD <thread> <file>")
            return
        thread, name = words
        try:
            with open(name, "rb") as file:
                data = file.read()
        except OSError as error:
            self.say(f"error: cannot read {name}: {error.strerror}")
            return
        self.say((await self.client.command("UPD", thread, name, payload=data)).text)

    async def download(self, words: list[str]) -> None:
        """DWN THREAD FILE: save the file in the current directory under its name."""
        if len(words) != 2:
            self.say("usage: DWN <thread> <file>")
            return
        thread, name = words
        reply = await self.client.command("DWN", thread, name)
        save(self.say, name, reply.payload)


class PasswordTerminal(TerminalConsole):
    """The terminal console, with a password prompt that does not echo (nor keep a history)."""

    def __init__(self) -> None:
        from prompt_toolkit import PromptSession

        super().__init__()
        self._secret: PromptSession[str] = PromptSession(is_password=True)

    async def read_password(self, prompt: str) -> str | None:
        """Show ``prompt`` and read a line without echoing it; None on Ctrl-D."""
        import asyncio

        self._prompting = asyncio.ensure_future(self._ask_secret(prompt))
        return await Deferred.fromFuture(self._prompting)

    async def _ask_secret(self, prompt: str) -> str | None:
        try:
            return await self._secret.prompt_async(prompt, handle_sigint=False)
        except EOFError:
            return None
        except KeyboardInterrupt:
            raise Interrupted() from None


async def leave(reactor: IReactorTime, client: TcpClient | UdpClient, said_goodbye: bool) -> None:
    """Close the connection, saying QUIT first unless XIT already ended the session."""
    if not said_goodbye:
        await farewell(reactor, client)
    elif isinstance(client, UdpClient):
        await client.close()
    elif not client.disconnected.called:
        assert client.transport is not None  # connected: disconnected has not fired
        client.transport.loseConnection()
        await client.disconnected


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``msgsvc-forum``."""
    args = parse_args(argv)
    interactive = use_terminal()
    transport = args.transport

    async def body(reactor: IReactorTime) -> None:
        from msgsvc.cli.console import PlainConsole

        console: Any = PasswordTerminal() if interactive else PlainConsole(reactor)
        read_password = console.read_password if interactive else console.read_line
        sessions: list[ForumSession] = []

        def talk(client: TcpClient | UdpClient) -> Coroutine[Any, Any, None]:
            sessions.append(ForumSession(client, console.read_line, read_password, console.say, interactive))
            return sessions[0].run()

        async def goodbye(client: TcpClient | UdpClient) -> None:
            await leave(reactor, client, bool(sessions) and sessions[0].said_goodbye)

        await converse(reactor, args.host, args.port, transport, console, talk, goodbye, args.cafile)

    run("msgsvc-forum", body, args.host, args.port, transport)


if __name__ == "__main__":
    main()
