# -*- test-case-name: tests.test_probe_cli,tests.test_probe_stats -*-
"""``msgsvc-probe HOST PORT [--udp] echo TEXT | gen N | stream MS COUNT``: the network path check.

- ``echo TEXT``: ECHO; prints the text that came back and the round-trip time.
- ``gen N``: GEN N; prints the bytes, seconds and MiB/s, and ``pattern verified`` once
  every byte i is ``chr(33 + i % 94)`` and the length is N.
- ``stream MS COUNT``: STREAM MS COUNT; collects the ``* PKT`` events until all COUNT
  arrived or MS x (COUNT + 1) plus a second passed, says STOP, then prints packets
  received, lost and reordered, duplicates, and the jitter (see :mod:`msgsvc.cli.probe_stats`).

With no check, the original echo/stream client's prompt (``probe>`` on a terminal; from a
pipe the lines are read in order, without prompts): a number asks for that many generated
bytes, ``stream`` asks for an interval and a count on the next two lines, ``quit`` (or the
end of input) ends, any other text is echoed. A failed check or a refused command is
printed as ``error: ...`` and the prompt goes on; at the end the exit status says whether
every check passed.

Exit status (see :mod:`msgsvc.cli.common`): 0 only when everything arrived intact; 1 with
one line on standard error when the server cannot be reached, refuses the command (over
UDP a reply larger than one datagram is ``ERR too-big``), does not answer in time, or a
check fails (an echo that differs, a broken pattern, a lost packet); 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Awaitable, Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from msgsvc.cli.common import CliError, Commands, connect, farewell, run
from msgsvc.cli.probe_stats import Arrival, gen_problem, mib_per_second, stream_report, stream_stats
from msgsvc.client import Event, ServerError

PROGRAM = "msgsvc-probe"
PROMPT = "probe> "
QUIT_WORDS = ("quit", "exit")
MARGIN = 1.0
"""Seconds a stream is waited for beyond MS x (COUNT + 1)."""
_NUMBER = re.compile(r"[0-9]+\Z")

ReadLine = Callable[[str], Awaitable[str | None]]
"""Asks for one line with a prompt; None at end of input."""
Say = Callable[[str], None]
"""Prints one line of output."""


class CheckFailed(CliError):
    """Something came back, but not intact."""


class Packets:
    """Collects the ``* PKT`` events of the stream being measured (others are ignored)."""

    def __init__(self, reactor: IReactorTime, clock: Callable[[], float] = time.monotonic) -> None:
        self.reactor = reactor
        self.clock = clock
        self._count = 0
        self._arrivals: list[Arrival] | None = None
        self._distinct: set[int] = set()
        self._complete: Deferred[None] = Deferred()

    def start(self, count: int) -> None:
        """Collect the packets of a stream of ``count``, forgetting any earlier ones."""
        self._count = count
        self._arrivals = []
        self._distinct = set()
        self._complete = Deferred()

    def stop(self) -> list[Arrival]:
        """Stop collecting; the arrivals so far, in arrival order."""
        arrivals, self._arrivals = self._arrivals or [], None
        return arrivals

    def on_event(self, event: Event) -> None:
        """The client's event handler."""
        if event.name != "PKT" or self._arrivals is None:
            return
        fields = event.args.split()
        try:
            seq, count = int(fields[0]), int(fields[1])
        except (IndexError, ValueError):
            return
        if count != self._count:  # a packet of an earlier stream
            return
        self._arrivals.append(Arrival(seq, self.clock()))
        if 1 <= seq <= count:
            self._distinct.add(seq)
        if len(self._distinct) == count:
            self._fire()

    def _fire(self) -> None:
        if not self._complete.called:
            self._complete.callback(None)

    async def finish(self, seconds: float) -> list[Arrival]:
        """Wait until every packet arrived or ``seconds`` passed, then stop collecting."""
        timer = self.reactor.callLater(seconds, self._fire)
        try:
            await self._complete
        finally:
            if timer.active():
                timer.cancel()
        return self.stop()


class Probe:
    """Runs the checks over one client; each prints its result, and raises CheckFailed unless intact."""

    def __init__(self, client: Commands, packets: Packets, say: Say) -> None:
        self.client = client
        self.packets = packets
        self.say = say

    async def echo(self, text: str) -> None:
        """ECHO the text (sent as a literal, so any text goes exactly) and time the round trip."""
        sent = text.encode()
        started = time.perf_counter()
        reply = await self.client.command("ECHO", payload=sent)
        elapsed = time.perf_counter() - started
        self.say(f"echo: {reply.payload.decode('utf-8', 'replace')}")
        self.say(f"round trip: {elapsed * 1000:.2f} ms")
        if reply.payload != sent:
            raise CheckFailed(f"the echo differs: {len(sent)} bytes sent, {len(reply.payload)} came back")

    async def gen(self, size: int) -> None:
        """GEN ``size`` bytes: throughput, and the pattern and length checked."""
        started = time.perf_counter()
        reply = await self.client.command("GEN", str(size))
        elapsed = time.perf_counter() - started
        rate = mib_per_second(len(reply.payload), elapsed)
        self.say(f"received {len(reply.payload)} bytes in {elapsed:.3f} s ({rate:.2f} MiB/s)")
        problem = gen_problem(reply.payload, size)
        if problem is not None:
            raise CheckFailed(problem)
        self.say("pattern verified")

    async def stream(self, interval_ms: int, count: int) -> None:
        """STREAM ``count`` packets every ``interval_ms``: loss, reordering, duplicates, jitter."""
        self.packets.start(count)
        try:
            reply = await self.client.command("STREAM", str(interval_ms), str(count))
            self.say(reply.text)
            arrivals = await self.packets.finish(interval_ms * (count + 1) / 1000 + MARGIN)
        finally:
            self.packets.stop()
        stopped = await self.client.command("STOP")
        stats = stream_stats(arrivals, count, interval_ms)
        for line in stream_report(stats, interval_ms):
            self.say(line)
        self.say(f"server: {stopped.text}")
        if not stats.intact:
            raise CheckFailed(f"{stats.lost} of {count} packets lost")


async def converse(probe: Probe, read_line: ReadLine, say: Say) -> None:
    """The prompt, until ``quit`` or the end of input; raises CheckFailed then if any check failed."""
    checks = failed = 0
    while True:
        line = await read_line(PROMPT)
        if line is None or line.strip().lower() in QUIT_WORDS:
            break
        word = line.strip()
        if not word:
            continue
        if word.lower() == "stream":
            interval = await read_line("interval (ms): ")
            count = None if interval is None else await read_line("count: ")
            if interval is None or count is None:
                break
            if not (_NUMBER.match(interval.strip()) and _NUMBER.match(count.strip())):
                say("error: the interval and the count must be whole numbers")
                continue
            check = probe.stream(int(interval), int(count))
        elif _NUMBER.match(word):
            check = probe.gen(int(word))
        else:
            check = probe.echo(line)
        checks += 1
        try:
            await check
        except CheckFailed as failure:
            failed += 1
            say(f"error: {failure}")
        except ServerError as failure:
            failed += 1
            say(f"error: server refused: {failure}")
    if failed:
        raise CheckFailed(f"{failed} of {checks} checks failed")


def whole_number(text: str) -> int:
    """A command-line count: digits only (the server judges the range)."""
    if not _NUMBER.match(text):
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
    return int(text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Check the network path to a msgsvc server: echo, generated bytes, timed packets.",
        epilog="With no check: a prompt (a number: gen; 'stream': asks interval and count; 'quit'; other text: echo).",
    )
    parser.add_argument("host", help="server host, e.g. 127.0.0.1")
    parser.add_argument("port", type=int, help="server port, e.g. 55556")
    parser.add_argument("--udp", action="store_true", help="talk over UDP instead of TCP")
    udp = argparse.ArgumentParser(add_help=False)
    udp.add_argument("--udp", action="store_true", default=argparse.SUPPRESS, help="talk over UDP instead of TCP")
    checks = parser.add_subparsers(dest="check", metavar="{echo,gen,stream}", help="the check (none: a prompt)")
    echo = checks.add_parser("echo", parents=[udp], help="echo a text and time the round trip")
    echo.add_argument("text", nargs="+", help="the text (several words are joined by spaces)")
    gen = checks.add_parser("gen", parents=[udp], help="receive N generated bytes and check them")
    gen.add_argument("n", type=whole_number, help="how many bytes")
    stream = checks.add_parser("stream", parents=[udp], help="receive COUNT packets, one every MS milliseconds")
    stream.add_argument("ms", type=whole_number, help="interval in milliseconds (1-60000)")
    stream.add_argument("count", type=whole_number, help="how many packets")
    return parser.parse_args(argv)


def say(text: str) -> None:
    """One line on standard output, at once."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``msgsvc-probe``."""
    args = parse_args(argv)
    interactive = args.check is None and sys.stdin.isatty()
    if interactive:
        from twisted.internet import asyncioreactor

        asyncioreactor.install()
    transport = "UDP" if args.udp else "TCP"

    async def body(reactor: IReactorTime) -> None:
        packets = Packets(reactor)
        client = await connect(reactor, args.host, args.port, transport, packets.on_event)
        try:
            if args.check == "echo":
                await Probe(client, packets, say).echo(" ".join(args.text))
            elif args.check == "gen":
                await Probe(client, packets, say).gen(args.n)
            elif args.check == "stream":
                await Probe(client, packets, say).stream(args.ms, args.count)
            else:
                await prompt(reactor, client, packets, interactive)
        finally:
            await farewell(reactor, client)

    run(PROGRAM, body, args.host, args.port, transport)


async def prompt(reactor: IReactorTime, client: Commands, packets: Packets, interactive: bool) -> None:
    """The prompt on a terminal (a line editor) or from a pipe (plain lines)."""
    from msgsvc.cli.console import PlainConsole, TerminalConsole

    console = TerminalConsole() if interactive else PlainConsole(reactor)
    try:
        await converse(Probe(client, packets, console.say), console.read_line, console.say)
    finally:
        await console.close()


if __name__ == "__main__":
    main()
