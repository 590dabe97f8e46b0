# -*- test-case-name: tests.test_web_status -*-
"""``GET /``: the status page, plain HTML that refreshes itself every few seconds (no JavaScript)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from msgsvc import __version__
from msgsvc.protocol.wire import host_port
from msgsvc.store.answers import deferred
from msgsvc.web.view import ServerView

log = Logger()

REFRESH_SECONDS = 5
SECURITY_HEADERS = {
    b"content-security-policy": b"default-src 'none'; style-src 'self'",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
}
"""Sent with the status page: it loads nothing but its stylesheet and runs no script."""


CLIENT_COLUMNS = ("id", "name", "transport", "address", "since", "for")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float) -> str:
    """``3d 4h 5m 6s``, leaving out the leading zero units."""
    whole = int(seconds)
    parts = [(whole // 86400, "d"), (whole // 3600 % 24, "h"), (whole // 60 % 60, "m"), (whole % 60, "s")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{n}{unit}" for n, unit in parts)


def _table(ident: str, caption: str, headings: Iterable[str], rows: Iterable[Iterable[object]], empty: str) -> str:
    """A section (``id=ident``) with a table of escaped cells; ``empty`` says so when there are no rows."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>\n" for row in rows)
    if not body:
        body = f'<tr><td colspan="{len(list(headings)) or 1}" class="empty">{escape(empty)}</td></tr>\n'
    return f'<section id="{ident}"><h2>{escape(caption)}</h2>\n<table><tr>{head}</tr>\n{body}</table></section>\n'


def render_status(view: ServerView, depths: list[tuple[str, int]]) -> str:
    """The whole status page for the server's state now and its queues' ``depths``."""
    now = view.clock.seconds()
    clients = [
        (
            session.id,
            session.display_name or "-",
            session.transport_name,
            host_port(session.peer),
            _iso(session.opened),
            duration(now - session.opened),
        )
        for session in view.broker.sessions
    ]
    totals = view.broker.queues.totals
    counters: list[tuple[str, object]] = [
        ("commands answered", view.commands.total()),
        ("commands answered ERR", view.commands.total(errors_only=True)),
        ("messages sent", totals.sent),
        ("messages received", totals.received),
        ("messages acked", totals.acked),
        ("messages redelivered", totals.redelivered),
        ("messages moved to dead letters", totals.dead),
    ]
    for transport, traffic in sorted(view.traffic.items()):
        counters += [
            (f"bytes received over {transport}", traffic.received),
            (f"bytes sent over {transport}", traffic.sent),
        ]
    if view.udp_dropped is not None:
        counters.append(("UDP datagrams dropped by the safety rules", sum(view.udp_dropped.values())))
    by_transport = ", ".join(f"{n} {t}" for t, n in view.clients_by_transport().items())
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>msgsvc status</title>
<link rel="stylesheet" href="/static/msgsvc.css">
</head>
<body>
<header><h1>msgsvc {escape(__version__)}</h1>
<p>Up {escape(duration(view.uptime))}, since {escape(_iso(view.started))}.
Clients: {escape(by_transport)}. This page refreshes every {REFRESH_SECONDS} seconds.</p>
<nav><a href="/chat">chat</a> · <a href="/metrics">metrics</a></nav></header>
<main>
{_table("clients", "Clients", CLIENT_COLUMNS, clients, "no client is connected")}
{_table("queues", "Queues", ("queue", "messages waiting"), depths, "every queue is empty")}
{_table("counters", "Counters", ("since start", "count"), counters, "")}
</main>
</body>
</html>
"""


class StatusPage(Resource):
    """The status page; it waits for the store's queue depths if the store answers later."""

    isLeaf = True

    def __init__(self, view: ServerView) -> None:
        super().__init__()
        self.view = view

    def render_GET(self, request: Request) -> int:
        for name, value in SECURITY_HEADERS.items():
            request.setHeader(name, value)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        gone: list[Failure] = []
        request.notifyFinish().addErrback(gone.append)

        def write(depths: list[tuple[str, int]]) -> None:
            if not gone:
                request.write(render_status(self.view, depths).encode())
                request.finish()

        deferred(self.view.broker.queues.depths()).addCallback(write).addErrback(self._failed, request, gone)
        return NOT_DONE_YET

    @staticmethod
    def _failed(failure: Failure, request: Request, gone: list[Failure]) -> None:
        log.failure("rendering the status page failed", failure, category="ERROR")
        if not gone:
            request.setResponseCode(500)
            request.write(b"internal error; it has been logged\n")
            request.finish()
