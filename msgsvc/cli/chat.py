"""``msgsvc-chat HOST PORT [--udp | --tls [--cafile FILE]] [--name N]``: the chat room from a terminal.

Typed text is said to the room; ``/verb args`` sends any command (``/who``, ``/status``,
``/list``, ``/get FILE [SAVE_AS]``, ``/quit``). On a terminal a line editor keeps what you
are typing intact while chat arrives (it is printed above the prompt), and a refused name
is asked for again; with standard input from a pipe it reads plain lines, so it can be
scripted, and a refused name is an error (``msgsvc-chat: name NAME refused: REASON``).

Exit status: 0 after ``/quit``, Ctrl-D (on an empty line, also at the name prompt) or the
end of piped input; 130 after Ctrl-C, at once and without a traceback; 1 with one line on
standard error when the server cannot be reached, does not answer, refuses the name from
a pipe, or ends the session (its ``* BYE`` is shown first). The client says QUIT on the
way out whenever the connection is still open (see :mod:`msgsvc.cli.common`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from twisted.internet.interfaces import IReactorTime

from msgsvc.cli.arguments import add_transport_arguments, transport_of
from msgsvc.cli.common import CliError, Commands, converse, farewell, run, use_terminal
from msgsvc.cli.display import save
from msgsvc.client import Reply, ServerError, TcpClient, UdpClient

ReadLine = Callable[[str], Awaitable[str | None]]
"""Asks for one line with a prompt; None at end of input."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="msgsvc-chat", description="Chat on a msgsvc server.")
    parser.add_argument("host", help="server host, e.g. 127.0.0.1")
    parser.add_argument("port", type=int, help="server port, e.g. 55556")
    add_transport_arguments(parser)
    parser.add_argument("--name", help="your chat name (asked for when not given)")
    args = parser.parse_args(argv)
    args.transport = transport_of(parser, args)
    return args


def show(reply: Reply) -> str:
    """A reply as a person reads it."""
    if reply.kind == "DATA":
        return reply.payload.decode("utf-8", "replace").rstrip("\r\n").replace("\r\n", "\n")
    return reply.text


class ChatSession:
    """One user's conversation: turns typed lines into commands and prints what comes back."""

    def __init__(
        self, client: Commands, read_line: ReadLine, say: Callable[[str], None], ask_again: bool = False
    ) -> None:
        self.client = client
        self.read_line = read_line
        self.say = say
        self.ask_again = ask_again
        """Whether a refused name is asked for again (on a terminal) rather than an error (from a pipe)."""
        self.name: str | None = None

    async def run(self, name: str | None) -> None:
        """Choose a name, then converse until /quit or the end of input."""
        if await self.choose_name(name):
            await self.converse()

    async def choose_name(self, name: str | None) -> bool:
        """NAME, asking for a name until the server accepts one; False if the input ends first."""
        while True:
            if name is None:
                name = await self.read_line("Please enter a name: ")
                if name is None:
                    if self.ask_again:
                        return False  # Ctrl-D at the prompt: the user leaves
                    raise CliError("no name given")
                name = name.strip()
            try:
                reply = await self.client.command("NAME", name)
            except ServerError as error:
                if not self.ask_again:
                    raise CliError(f"name {name} refused: {error.text}") from None
                self.say(f"error: {error.text}")
                name = None
                continue
            self.say(reply.text)
            self.name = name
            return True

    async def converse(self) -> None:
        """Read lines until /quit or end of input (the caller says QUIT)."""
        while True:
            line = await self.read_line(f"{self.name}> ")
            if line is None or line.strip().lower() in ("/quit", "/exit", "/xit"):
                return
            if line.strip():
                await self.handle(line)

    async def handle(self, line: str) -> None:
        """Run one typed line."""
        try:
            if not line.startswith("/"):
                reply = await self.client.command("SAY", line)
            else:
                verb, _, rest = line[1:].partition(" ")
                if verb.lower() == "get":
                    await self.get(rest.split())
                    return
                reply = await self.client.command(verb.upper(), *([rest] if rest else []))
        except ServerError as error:
            self.say(f"error: {error.text}")
            return
        text = show(reply)
        if text:
            self.say(text)

    async def get(self, words: list[str]) -> None:
        """/get FILE [SAVE_AS]: fetch a file and save it."""
        if not 1 <= len(words) <= 2:
            self.say("usage: /get FILE [SAVE_AS]")
            return
        reply = await self.client.command("GET", words[0])
        target = words[1] if len(words) == 2 else os.path.basename(words[0])
        save(self.say, target, reply.payload)


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``msgsvc-chat``."""
    args = parse_args(argv)
    interactive = use_terminal()
    transport = args.transport

    async def body(reactor: IReactorTime) -> None:
        from msgsvc.cli.console import PlainConsole, TerminalConsole

        console = TerminalConsole() if interactive else PlainConsole(reactor)

        def talk(client: TcpClient | UdpClient) -> Coroutine[Any, Any, None]:
            return ChatSession(client, console.read_line, console.say, ask_again=interactive).run(args.name)

        async def leave(client: TcpClient | UdpClient) -> None:
            await farewell(reactor, client)

        await converse(reactor, args.host, args.port, transport, console, talk, leave, args.cafile)

    run("msgsvc-chat", body, args.host, args.port, transport)


if __name__ == "__main__":
    main()
