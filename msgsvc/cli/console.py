# -*- test-case-name: tests.test_cli_pty,tests.test_chat_cli -*-
"""Where an interactive client reads lines and prints what arrives: a pipe, or a terminal.

Both consoles offer ``read_line(prompt)`` (None at the end of input), ``say(text)`` (one
line of output) and ``close()`` (wait until everything said is written and the terminal
is given back).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from twisted.internet.defer import Deferred

from msgsvc.cli.common import Interrupted


class PlainConsole:
    """Lines from standard input, read without blocking the reactor (for pipes and scripts)."""

    def __init__(self, reactor: Any, output: TextIO | None = None) -> None:
        from twisted.internet import stdio
        from twisted.protocols.basic import LineReceiver

        self._output = output or sys.stdout
        self._lines: list[str | None] = []
        self._waiting: list[Deferred[str | None]] = []
        deliver = self._deliver

        class Lines(LineReceiver):
            delimiter = b"\n"

            def lineReceived(self, line: bytes) -> None:
                deliver(line.rstrip(b"\r").decode("utf-8", "replace"))

            def connectionLost(self, reason: object = None) -> None:
                deliver(None)

        stdio.StandardIO(Lines(), reactor=reactor)

    def _deliver(self, item: str | None) -> None:
        if self._waiting:
            self._waiting.pop(0).callback(item)
        else:
            self._lines.append(item)

    async def read_line(self, prompt: str) -> str | None:
        """The next input line (no prompt is shown); None at the end of input."""
        if self._lines:
            return self._lines.pop(0)
        line: Deferred[str | None] = Deferred()
        self._waiting.append(line)
        return await line

    def say(self, text: str) -> None:
        """Print one line at once."""
        self._output.write(text + "\n")
        self._output.flush()

    async def close(self) -> None:
        """Nothing is pending: every line was written when it was said."""


class TerminalConsole:
    """A prompt_toolkit line editor: output appears above the line being typed, which stays intact.

    Ctrl-D on an empty line is the end of input; Ctrl-C raises :class:`Interrupted`.
    Runs on the asyncio reactor.
    """

    def __init__(self, output: TextIO | None = None) -> None:
        from prompt_toolkit import PromptSession

        self._session: PromptSession[str] = PromptSession()
        self._output = output or sys.stdout
        self._prompting: Any = None
        """The asyncio task of the prompt on screen, if any."""
        self._printing: list[Any] = []
        """run_in_terminal futures not yet done, in order."""
        self._closed = False

    async def read_line(self, prompt: str) -> str | None:
        """Show ``prompt`` and edit a line; None on Ctrl-D."""
        import asyncio

        self._prompting = asyncio.ensure_future(self._ask(prompt))
        # cancelling this Deferred cancels the prompt and waits until the terminal is restored
        return await Deferred.fromFuture(self._prompting)

    async def _ask(self, prompt: str) -> str | None:
        # A KeyboardInterrupt must not leave this task: asyncio would re-raise it out of
        # the event loop, past the reactor's shutdown. SIGINT itself belongs to
        # msgsvc.cli.common.run (handle_sigint=False).
        try:
            return await self._session.prompt_async(prompt, handle_sigint=False)
        except EOFError:
            return None
        except KeyboardInterrupt:
            raise Interrupted() from None

    def say(self, text: str) -> None:
        """Print one line above the prompt (the prompt is erased, the line written, the prompt redrawn)."""
        from prompt_toolkit.application import run_in_terminal

        if self._closed:  # no prompt any more, and nobody would wait for a printing task
            self._write(text)
            return
        self._printing = [future for future in self._printing if not future.done()]
        self._printing.append(run_in_terminal(lambda: self._write(text)))

    def _write(self, text: str) -> None:
        self._output.write(text + "\n")
        self._output.flush()

    async def close(self) -> None:
        """Write what is still to be said, then end the prompt if one is up and restore the terminal."""
        await _settle(self._printing)
        if self._prompting is not None and not self._prompting.done():
            self._prompting.cancel()
            await _settle([self._prompting])
        await _settle(self._printing)
        self._closed = True


async def _settle(futures: list[Any]) -> None:
    """Wait until the asyncio futures are done, whatever their outcome."""
    import asyncio

    pending = [future for future in futures if not future.done()]
    if pending:
        await Deferred.fromFuture(asyncio.ensure_future(asyncio.wait(pending)))
