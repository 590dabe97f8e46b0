"""``msgsvc-chat HOST PORT [--udp] [--name N]``: the chat room from a terminal.

Typed text is said to the room; ``/verb args`` sends any command (``/who``, ``/status``,
``/list``, ``/get FILE [SAVE_AS]``, ``/quit``). On a terminal a line editor keeps what you
are typing intact while chat arrives; with standard input from a pipe it reads plain lines,
so it can be scripted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable

from twisted.internet.defer import Deferred, DeferredList, FirstError

from msgsvc.cli.common import CliError, connect, run
from msgsvc.client import Event, Reply, ServerError

ReadLine = Callable[[str], Awaitable[str | None]]
"""Asks for one line with a prompt; None at end of input."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="msgsvc-chat", description="Chat on a msgsvc server.")
    parser.add_argument("host", help="server host, e.g. 127.0.0.1")
    parser.add_argument("port", type=int, help="server port, e.g. 55556")
    parser.add_argument("--udp", action="store_true", help="talk over UDP instead of TCP")
    parser.add_argument("--name", help="your chat name (asked for when not given)")
    return parser.parse_args(argv)


def describe(event: Event) -> str:
    """An event as a person reads it."""
    if event.name == "CHAT":
        speaker, _, text = event.args.partition(" ")
        return f"{speaker}: {text}"
    if event.name == "JOIN":
        return f"* {event.args} joined"
    if event.name == "LEAVE":
        return f"* {event.args} left"
    if event.name == "BYE":
        return f"* the server closed the session ({event.args})"
    return f"* {event.name} {event.args}"


def show(reply: Reply) -> str:
    """A reply as a person reads it."""
    if reply.kind == "DATA":
        return reply.payload.decode("utf-8", "replace").rstrip("\r\n").replace("\r\n", "\n")
    return reply.text


class ChatSession:
    """One user's conversation: turns typed lines into commands and prints what comes back."""

    def __init__(self, client, read_line: ReadLine, say: Callable[[str], None]) -> None:
        self.client = client
        self.read_line = read_line
        self.say = say
        self.name: str | None = None

    async def choose_name(self, name: str | None) -> None:
        """NAME, asking for a name until the server accepts one."""
        while True:
            if name is None:
                name = await self.read_line("Please enter a name: ")
                if name is None:
                    raise CliError("no name given")
                name = name.strip()
            try:
                reply = await self.client.command("NAME", name)
            except ServerError as error:
                self.say(f"error: {error.text}")
                name = None
                continue
            self.say(reply.text)
            self.name = name
            return

    async def converse(self) -> None:
        """Read lines until /quit or end of input."""
        while True:
            line = await self.read_line(f"{self.name}> ")
            if line is None or line.strip().lower() in ("/quit", "/exit", "/xit"):
                await self.client.command("QUIT")
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
        try:
            with open(target, "wb") as file:
                file.write(reply.payload)
        except OSError as error:
            self.say(f"error: cannot write {target}: {error.strerror}")
            return
        self.say(f"saved {len(reply.payload)} bytes to {target}")


def plain_reader(reactor) -> ReadLine:
    """Lines from standard input, read without blocking the reactor (for pipes and scripts)."""
    from twisted.internet import stdio
    from twisted.protocols.basic import LineReceiver

    lines: list[str | None] = []
    waiting: list[Deferred] = []

    def deliver(item: str | None) -> None:
        if waiting:
            waiting.pop(0).callback(item)
        else:
            lines.append(item)

    class Lines(LineReceiver):
        delimiter = b"\n"

        def lineReceived(self, line: bytes) -> None:
            deliver(line.rstrip(b"\r").decode("utf-8", "replace"))

        def connectionLost(self, reason=None) -> None:
            deliver(None)

    stdio.StandardIO(Lines(), reactor=reactor)

    async def read_line(prompt: str) -> str | None:
        if lines:
            return lines.pop(0)
        result: Deferred[str | None] = Deferred()
        waiting.append(result)
        return await result

    return read_line


def terminal_reader() -> tuple[ReadLine, Callable[[], object]]:
    """A prompt_toolkit line editor; events print above the line being typed."""
    import asyncio

    from prompt_toolkit import PromptSession
    from prompt_toolkit.patch_stdout import patch_stdout

    prompt = PromptSession()
    patched = patch_stdout()

    async def read_line(text: str) -> str | None:
        try:
            return await Deferred.fromFuture(asyncio.ensure_future(prompt.prompt_async(text)))
        except (EOFError, KeyboardInterrupt):
            return None

    return read_line, patched


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``msgsvc-chat``."""
    args = parse_args(argv)
    interactive = sys.stdin.isatty()
    if interactive:
        from twisted.internet import asyncioreactor

        asyncioreactor.install()

    def say(text: str) -> None:
        print(text, flush=True)

    async def body(reactor) -> None:
        closed: Deferred[None] = Deferred()

        def on_event(event: Event) -> None:
            say(describe(event))
            if event.name == "BYE" and not closed.called:
                closed.callback(None)

        client = await connect(reactor, args.host, args.port, "UDP" if args.udp else "TCP", on_event)
        if hasattr(client, "disconnected"):
            client.disconnected.addCallback(lambda _: closed.called or closed.callback(None))
        if interactive:
            read_line, patched = terminal_reader()
            with patched:
                await _until_closed(_talk(client, read_line, say, args.name), closed)
        else:
            await _until_closed(_talk(client, plain_reader(reactor), say, args.name), closed)

    run("msgsvc-chat", body, args.host, args.port, "UDP" if args.udp else "TCP")


async def _talk(client, read_line: ReadLine, say: Callable[[str], None], name: str | None) -> None:
    session = ChatSession(client, read_line, say)
    await session.choose_name(name)
    await session.converse()


async def _until_closed(conversation, closed: Deferred[None]) -> None:
    """Run the conversation; stop with an error if the server ends the session first."""
    talking = Deferred.fromCoroutine(conversation)
    try:
        _, index = await DeferredList(
            [talking, closed], fireOnOneCallback=True, fireOnOneErrback=True, consumeErrors=True
        )
    except FirstError as error:
        error.subFailure.raiseException()
    if index == 1:
        talking.cancel()
        raise CliError("the server ended the session")


if __name__ == "__main__":
    main()
