# -*- test-case-name: tests.test_cli_pty,tests.test_chat_cli -*-
"""What every msgsvc CLI shares: connecting over either transport, reporting failures, ending.

Exit statuses, the same for every client:

- 0: done (for ``msgsvc-chat`` also ``/quit``, Ctrl-D and the end of piped input);
- 1: one line on standard error saying why: the server cannot be reached, refuses a
  command (``ERR``), does not answer in time, or ends the session;
- 130 (128 + SIGINT, the shell's convention): Ctrl-C, which ends a client at once, with no
  traceback and nothing printed; 143 (128 + SIGTERM) for a termination request. A client
  that is connected says ``QUIT`` on the way out, waiting at most :data:`FAREWELL` seconds;
  a second Ctrl-C stops it without waiting.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, Protocol

from twisted.internet import defer, error
from twisted.internet.defer import CancelledError, Deferred, DeferredList, FirstError
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, IReactorThreads, IReactorTime
from twisted.python.failure import Failure

from msgsvc.cli.display import describe
from msgsvc.client import (
    ServerError,
    TcpClient,
    TlsFailure,
    TransferFailed,
    UdpClient,
    client_tls,
    connect_tcp,
    connect_udp,
)
from msgsvc.client.replies import Event, Reply

TIMEOUT = 10.0
"""Seconds a CLI waits for the server before giving up."""
FAREWELL = 0.3
"""Seconds a leaving client waits at most for the reply to QUIT and the connection to close."""
INTERRUPTED = 128 + signal.SIGINT
"""Exit status after Ctrl-C."""


class CliError(Exception):
    """A failure to report on one line, exiting non-zero."""


class Interrupted(Exception):
    """Ctrl-C read as a key (a line editor has the terminal in raw mode): end with INTERRUPTED."""


class Commands(Protocol):
    """What a CLI asks of a client, whichever its transport: commands."""

    def command(self, verb: str, *args: str, payload: bytes | None = None) -> Deferred[Reply]: ...


def connect(
    reactor: IReactorTime,
    host: str,
    port: int,
    transport: str,
    on_event: Callable[[Event], None] | None = None,
    cafile: str | None = None,
) -> Deferred[TcpClient] | Deferred[UdpClient]:
    """A client over ``transport`` ('TCP', 'UDP', or 'TLS' verified against ``cafile`` or the system's CAs)."""
    if transport == "UDP":
        return connect_udp(reactor, host, port, on_event, timeout=1.0, retries=3)
    tls: IOpenSSLClientConnectionCreator | None = client_tls(host, cafile) if transport == "TLS" else None
    return connect_tcp(reactor, host, port, on_event, timeout=TIMEOUT, command_timeout=TIMEOUT, tls=tls)


def explain(failure_value: BaseException, host: str, port: int, transport: str) -> str:
    """One line saying what went wrong, for a person."""
    where = f"{host}:{port} over {transport}"
    if isinstance(failure_value, ServerError):
        return f"server refused: {failure_value}"
    if isinstance(failure_value, TransferFailed):
        return f"transfer with {where} failed: {failure_value}"
    if isinstance(failure_value, (error.TimeoutError, defer.TimeoutError, TimeoutError)):
        return f"no answer from {where} (is the server running?)"
    if isinstance(failure_value, error.DNSLookupError):
        return f"cannot resolve {host}"
    if isinstance(failure_value, error.ConnectError):
        return f"cannot reach {where}: connection refused"
    if isinstance(failure_value, TlsFailure):
        return f"{where}: {failure_value}"
    if isinstance(failure_value, error.ConnectionLost):
        return f"{where} closed the connection"
    if isinstance(failure_value, (CliError, OSError, ValueError)):
        return str(failure_value)
    return f"{type(failure_value).__name__}: {failure_value}"


def _within(reactor: IReactorTime, deferred: Deferred[Any], seconds: float) -> Deferred[None]:
    """Fires when ``deferred`` does or after ``seconds``, whichever is first; ``deferred`` is left alone."""
    done: Deferred[None] = Deferred()

    def expired() -> None:
        if not done.called:
            done.callback(None)

    timer = reactor.callLater(seconds, expired)

    def fired(result: object) -> object:
        if timer.active():
            timer.cancel()
        if not done.called:
            done.callback(None)
        return result

    deferred.addBoth(fired)
    return done


async def farewell(reactor: IReactorTime, client: TcpClient | UdpClient) -> None:
    """Say QUIT and close the connection, within FAREWELL seconds in all; never fails."""
    deadline = reactor.seconds() + FAREWELL
    if isinstance(client, UdpClient):
        quitting = client.command("QUIT")
        quitting.addErrback(lambda _: None)
        await _within(reactor, quitting, FAREWELL)
        quitting.cancel()
        await client.close()
        return
    if client.disconnected.called:
        return
    quitting = client.command("QUIT")
    quitting.addErrback(lambda _: None)
    await _within(reactor, quitting, FAREWELL)
    assert client.transport is not None  # connected: disconnected has not fired
    client.transport.loseConnection()
    await _within(reactor, client.disconnected, max(0.0, deadline - reactor.seconds()))
    if not client.disconnected.called:
        client.abort()


Body = Callable[[IReactorTime], Coroutine[Any, Any, None]]
"""A client's work: an async function of the reactor."""


def run(program: str, body: Body, host: str, port: int, transport: str) -> NoReturn:
    """Run ``body(reactor)`` under the reactor and exit with the status described above.

    SIGINT and SIGTERM cancel ``body`` (its ``finally`` blocks run: the place to say
    goodbye); a second one stops the reactor at once.
    """
    from twisted.internet import reactor

    status = 0
    signalled: int | None = None
    finished: Deferred[None] | None = None

    def stop(result: object = None) -> None:
        try:
            reactor.stop()
        except error.ReactorNotRunning:
            pass

    threads = IReactorThreads(reactor)  # the reactor itself: Twisted's type for it leaves IReactorThreads out

    def on_signal(signum: int, frame: object) -> None:
        threads.callFromThread(interrupted, signum)

    def interrupted(signum: int) -> None:
        nonlocal signalled
        first = signalled is None
        signalled = 128 + signum
        if first and finished is not None and not finished.called:
            finished.cancel()
        else:
            stop()

    async def main() -> None:
        nonlocal status, signalled
        try:
            await body(reactor)
        except Interrupted:
            signalled = INTERRUPTED
        except CancelledError:
            if signalled is None:
                raise
        except ServerError as failure:
            # the original's words for an empty queue stand alone; other refusals name the program
            empty = failure.code == "empty"
            line = failure.text if empty else f"{program}: {explain(failure, host, port, transport)}"
            sys.stderr.write(line + "\n")
            status = 1
        except Exception as failure:  # every failure becomes one line and exit status 1
            sys.stderr.write(f"{program}: {explain(failure, host, port, transport)}\n")
            status = 1

    def unexpected(failure: Failure) -> None:
        nonlocal status
        assert failure.value is not None  # a Failure carries its exception
        sys.stderr.write(f"{program}: {explain(failure.value, host, port, transport)}\n")
        status = 1

    def start() -> None:
        nonlocal finished
        finished = Deferred.fromCoroutine(main())
        finished.addErrback(unexpected).addBoth(stop)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    reactor.callWhenRunning(start)
    try:
        # IReactorCore declares run() without parameters; every reactor's run takes installSignalHandlers.
        reactor.run(installSignalHandlers=False)  # type: ignore[call-arg]
    except KeyboardInterrupt:  # not expected (SIGINT is handled above); never hang on the way out
        sys.stderr.flush()
        os._exit(INTERRUPTED)
    sys.stdout.flush()
    sys.exit(signalled if signalled is not None else status)


async def until_ended(conversation: Coroutine[Any, Any, None], ended: Deferred[None]) -> None:
    """Run the conversation; stop with an error if the server ends the session first."""
    talking = Deferred.fromCoroutine(conversation)
    try:
        _, index = await DeferredList(
            [talking, ended], fireOnOneCallback=True, fireOnOneErrback=True, consumeErrors=True
        )
    except FirstError as error:
        error.subFailure.raiseException()
    if index == 1:
        talking.cancel()
        await talking  # the prompt is gone once this fires
        raise CliError("the server ended the session")


class Console(Protocol):
    """Where an interactive client prints (a terminal line editor, or plain standard output)."""

    def say(self, text: str) -> None: ...

    async def close(self) -> None: ...


def use_terminal() -> bool:
    """Whether standard input is a terminal; if so, install the reactor the line editor needs (call first)."""
    interactive = sys.stdin.isatty()
    if interactive:
        from twisted.internet import asyncioreactor

        asyncioreactor.install()
    return interactive


async def converse(
    reactor: IReactorTime,
    host: str,
    port: int,
    transport: str,
    console: Console,
    talk: Callable[[TcpClient | UdpClient], Coroutine[Any, Any, None]],
    leave: Callable[[TcpClient | UdpClient], Coroutine[Any, Any, None]],
    cafile: str | None = None,
) -> None:
    """Connect, print events as they come, and run ``talk`` until it ends or the server ends the session.

    Whatever happens, the console is closed and ``leave`` says goodbye to the server.
    """
    ended: Deferred[None] = Deferred()

    def end(_: object = None) -> None:
        if not ended.called:
            ended.callback(None)

    def on_event(event: Event) -> None:
        console.say(describe(event))
        if event.name == "BYE":
            end()

    client: TcpClient | UdpClient = await connect(reactor, host, port, transport, on_event, cafile)
    if isinstance(client, TcpClient):  # a UDP client is never disconnected
        client.disconnected.addCallback(end)
    try:
        await until_ended(talk(client), ended)
    finally:
        await console.close()
        await leave(client)
