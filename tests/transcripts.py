"""Replaying the ``nc`` transcripts of the docs against an in-process server, byte for byte.

A transcript is a fenced block preceded by a marker naming whose screen it is::

    <!-- replay alice tcp 45938 -->

The block's lines are, in order, what that client typed and what the server
sent; a line is taken as typed unless the server has sent something that
should appear there. A first line ``$ nc ...`` opens the connection (and is not
sent). Other markers drive what the reader does not see:

    <!-- hidden bob tcp 45940: NAME bob -->   one command from another client, output unchecked
    <!-- clock +1 -->                        time passes

Every page replays on a fresh server (memory store, the default options, the
checkout's ``data/`` for LIST/GET) on a Clock set to EPOCH, with the client
addresses the markers give, so ids, ports and times come out as printed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from msgsvc.dispatch.verbs import build_table
from msgsvc.domain.broker import Broker
from msgsvc.transports.tcp import Connection
from msgsvc.transports.udp import DatagramFrontEnd
from tests.helpers import ROOT, DatagramTransport, make_broker, settle

EPOCH = datetime(2026, 11, 21, 13, 55, 49, tzinfo=UTC).timestamp()
"""The time every replay starts at."""
HOST = "127.0.0.1"

_MARKER = re.compile(r"<!-- (replay|hidden|clock) ([^:>]*?)(?:: (.*?))? -->\Z")
_SERVER_LINE = re.compile(r"(#[A-Za-z0-9]{1,16} )?(OK|ERR|DATA)( |\Z)|\* ")
_NC = re.compile(r"\$ nc (-u )?\S+ \d+\Z")


class TranscriptMismatch(AssertionError):
    """The server's output differs from what the page shows."""


@dataclass
class Step:
    """One marker of a page, with the block or command it introduces."""

    kind: str
    words: list[str]
    text: str
    line: int
    """Where the marker stands in the page (1-based), for failure messages."""


def steps(markdown: str) -> list[Step]:
    """The replay markers of a page, in order."""
    lines = markdown.splitlines()
    found: list[Step] = []
    for index, line in enumerate(lines):
        match = _MARKER.match(line.strip())
        if match is None:
            continue
        kind, words, command = match.group(1), match.group(2).split(), match.group(3) or ""
        if kind == "replay":
            if index + 1 >= len(lines) or not lines[index + 1].startswith("```"):
                raise ValueError(f"line {index + 1}: a replay marker must stand right before a ``` block")
            end = lines.index("```", index + 2)
            command = "".join(text + "\n" for text in lines[index + 2 : end])
        found.append(Step(kind, words, command, index + 1))
    return found


class Screen:
    """One client of the replay: a TCP connection or a UDP address."""

    def __init__(self, replay: Replay, transport: str, port: int) -> None:
        self.replay = replay
        self.udp = transport == "udp"
        self.address = (HOST, port)
        self.connection: Connection | None = None
        self.tcp: StringTransport | None = None

    def connect(self) -> None:
        """Open the TCP connection (a UDP client needs none)."""
        if not self.udp and self.connection is None:
            self.tcp = StringTransport(peerAddress=IPv4Address("TCP", HOST, self.address[1]))
            self.connection = Connection(self.replay.broker, self.replay.table, self.replay.clock)
            self.connection.makeConnection(self.tcp)

    def send(self, line: str) -> None:
        """What the client types, with its line ending."""
        data = line.encode() + b"\n"
        if self.udp:
            self.replay.udp.datagramReceived(data, self.address)
        else:
            self.connect()
            self.connection.dataReceived(data)

    def output(self) -> str:
        """What the server sent this client since the last call, as a terminal shows it."""
        settle(self.replay.broker)
        if self.udp:
            sent = self.replay.datagrams.sent
            data = b"".join(payload for payload, to in sent if to == self.address)
            self.replay.datagrams.sent = [(payload, to) for payload, to in sent if to != self.address]
        elif self.tcp is not None:
            data = self.tcp.value()
            self.tcp.clear()
        else:
            data = b""
        return data.decode("utf-8").replace("\r\n", "\n")


class Replay:
    """A fresh server and the clients of one page."""

    def __init__(self, **settings: object) -> None:
        self.clock = Clock()
        self.clock.advance(EPOCH)
        self.broker: Broker = make_broker(self.clock, files=os.path.join(ROOT, "data"), **settings)
        self.table = build_table()
        self.datagrams = DatagramTransport()
        self.udp = DatagramFrontEnd(self.broker, self.table, self.clock)
        self.udp.makeConnection(self.datagrams)
        self.screens: dict[str, Screen] = {}

    def screen(self, words: list[str], step: Step) -> Screen:
        """The client a marker names, created on first mention (``name transport port``)."""
        name = words[0]
        if name not in self.screens:
            if len(words) != 3:
                raise ValueError(f"line {step.line}: first mention of {name} needs its transport and port")
            self.screens[name] = Screen(self, words[1], int(words[2]))
        return self.screens[name]

    def run(self, markdown: str) -> int:
        """Replay every marker of a page; returns how many transcripts were checked."""
        checked = 0
        for step in steps(markdown):
            if step.kind == "clock":
                self.clock.advance(float(step.words[0]))
            elif step.kind == "hidden":
                screen = self.screen(step.words, step)
                screen.send(step.text)
                screen.output()
            else:
                self._check(self.screen(step.words, step), step)
                checked += 1
        return checked

    def _check(self, screen: Screen, step: Step) -> None:
        expected = step.text
        position = 0
        first = expected.split("\n", 1)[0]
        if _NC.match(first):
            if ("-u " in first) != screen.udp:
                raise ValueError(f"line {step.line}: the marker's transport does not match {first!r}")
            screen.connect()
            position = len(first) + 1
        while True:
            shown = screen.output()
            if shown:
                if not expected.startswith(shown, position):
                    raise TranscriptMismatch(_difference(step, expected, position, shown))
                position += len(shown)
                continue
            if position >= len(expected):
                return
            line = expected[position : expected.index("\n", position)]
            if _SERVER_LINE.match(line):
                if not self._advance_to_next_timer():
                    raise TranscriptMismatch(_difference(step, expected, position, ""))
                continue
            screen.send(line)
            position += len(line) + 1

    def _advance_to_next_timer(self) -> bool:
        """Move the clock to the next scheduled call; False when nothing is scheduled."""
        calls = self.clock.getDelayedCalls()
        if not calls:
            return False
        due = min(call.getTime() for call in calls)
        self.clock.advance(max(0.0, due - self.clock.seconds()))
        return True


def _difference(step: Step, expected: str, position: int, shown: str) -> str:
    line = step.line + 1 + expected.count("\n", 0, position) + 1
    wanted = expected[position : position + max(len(shown), 80)]
    return f"transcript at line {step.line}, near line {line}:\n  page shows:  {wanted!r}\n  server sent: {shown!r}"
