# -*- test-case-name: tests.test_web_site -*-
"""The ``--web`` resource tree: ``/`` status, ``/metrics``, ``/ws``, ``/chat`` and its ``/static`` files."""

from __future__ import annotations

from importlib.resources import files

from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from twisted.web.websocket import WebSocketResource

from msgsvc.dispatch.table import CommandTable
from msgsvc.domain.broker import Broker
from msgsvc.transports.tcp import ConnectionFactory
from msgsvc.transports.udp import DatagramFrontEnd
from msgsvc.transports.websocket import WebSocketFactory
from msgsvc.web.metrics import MetricsPage, build_registry
from msgsvc.web.status import StatusPage
from msgsvc.web.view import ServerView

STATIC_TYPES = {
    "chat.html": b"text/html; charset=utf-8",
    "chat.js": b"text/javascript; charset=utf-8",
    "msgsvc.css": b"text/css; charset=utf-8",
}
"""The files shipped in ``msgsvc/web/static``, with their content types."""
CHAT_POLICY = b"default-src 'self'; connect-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'"
"""The chat page runs its own script only, and talks to its own server only."""
HTTP_IDLE_TIMEOUT = 60
"""Seconds an HTTP connection may stay idle (Twisted's default is 12 hours); a WebSocket has --idle-timeout."""


class StaticFile(Resource):
    """A file of the package, read once, served with its type and a content security policy."""

    isLeaf = True

    def __init__(self, name: str) -> None:
        super().__init__()
        self.data = files("msgsvc.web").joinpath("static", name).read_bytes()
        self.content_type = STATIC_TYPES[name]

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", self.content_type)
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"content-security-policy", CHAT_POLICY)
        return self.data


def build_resources(view: ServerView, websockets: WebSocketFactory) -> Resource:
    """The resource tree of the web interface."""
    root = Resource()
    root.putChild(b"", StatusPage(view))
    root.putChild(b"metrics", MetricsPage(build_registry(view)))
    root.putChild(b"ws", WebSocketResource(websockets))
    root.putChild(b"chat", StaticFile("chat.html"))
    static = Resource()
    for name in STATIC_TYPES:
        static.putChild(name.encode(), StaticFile(name))
    root.putChild(b"static", static)
    return root


def build_site(
    broker: Broker,
    table: CommandTable,
    reactor: IReactorTime,
    tcp: ConnectionFactory | None,
    udp: DatagramFrontEnd | None,
) -> Site:
    """The web interface of a server: its view counts the table's commands and reads the front ends' counters."""
    websockets = WebSocketFactory(broker, table, reactor)
    view = ServerView(broker, reactor, udp_dropped=udp.dropped if udp is not None else None)
    view.traffic["ws"] = websockets.traffic
    if tcp is not None:
        view.traffic["tcp"] = tcp.traffic
    if udp is not None:
        view.traffic["udp"] = udp.traffic
    table.observer = view.commands
    site = Site(build_resources(view, websockets), reactor=reactor, timeout=HTTP_IDLE_TIMEOUT)
    site.noisy = False
    return site
