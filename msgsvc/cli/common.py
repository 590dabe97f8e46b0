"""What every msgsvc CLI shares: connecting over either transport and reporting failures."""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine
from typing import Any

from twisted.internet import error, task
from twisted.internet.defer import Deferred

from msgsvc.client import ServerError, connect_tcp, connect_udp
from msgsvc.client.replies import Event

TIMEOUT = 10.0
"""Seconds a CLI waits for the server before giving up."""


class CliError(Exception):
    """A failure to report on one line, exiting non-zero."""


def connect(reactor, host: str, port: int, transport: str, on_event: Callable[[Event], None] | None = None) -> Deferred:
    """A client over ``transport`` ('TCP' or 'UDP')."""
    if transport == "UDP":
        return connect_udp(reactor, host, port, on_event, timeout=1.0, retries=3)
    return connect_tcp(reactor, host, port, on_event, timeout=TIMEOUT, command_timeout=TIMEOUT)


def explain(failure_value: BaseException, host: str, port: int, transport: str) -> str:
    """One line saying what went wrong, for a person."""
    where = f"{host}:{port} over {transport}"
    if isinstance(failure_value, ServerError):
        return f"server refused: {failure_value}"
    if isinstance(failure_value, (error.TimeoutError, TimeoutError)):
        return f"no answer from {where} (is the server running?)"
    if isinstance(failure_value, error.DNSLookupError):
        return f"cannot resolve {host}"
    if isinstance(failure_value, error.ConnectError):
        return f"cannot reach {where}: connection refused"
    if isinstance(failure_value, error.ConnectionLost):
        return f"{where} closed the connection"
    if isinstance(failure_value, (CliError, OSError, ValueError)):
        return str(failure_value)
    return f"{type(failure_value).__name__}: {failure_value}"


def run(program: str, body: Callable[[Any], Coroutine[Any, Any, None]], host: str, port: int, transport: str) -> None:
    """Run ``body(reactor)`` under the reactor; exit 1 with a one-line error if it fails."""

    async def main(reactor) -> None:
        try:
            await body(reactor)
        except ServerError as failure:
            # the original's words for an empty queue stand alone; other refusals name the program
            empty = failure.code == "empty"
            sys.stderr.write(
                failure.text + "\n" if empty else f"{program}: {explain(failure, host, port, transport)}\n"
            )
            raise SystemExit(1) from None
        except Exception as failure:  # every failure becomes one line and exit status 1
            sys.stderr.write(f"{program}: {explain(failure, host, port, transport)}\n")
            raise SystemExit(1) from None

    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor)))
