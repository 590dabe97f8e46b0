"""Tests for the web interface: /metrics, the status page, the chat page's files, and serving it on --web."""

from __future__ import annotations

import re
from importlib.resources import files

from prometheus_client import generate_latest
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from msgsvc.dispatch.verbs import build_table
from msgsvc.transports.listeners import StartupError
from msgsvc.transports.tcp import ConnectionFactory
from msgsvc.transports.udp import DatagramFrontEnd
from msgsvc.web.service import WebService, listening_address
from msgsvc.web.site import STATIC_TYPES, build_site
from msgsvc.web.status import duration
from tests.helpers import DatagramTransport, FakeClient, TcpHarness, make_broker, settle, temp_path


def child(site_resource: Resource, path: bytes) -> Resource:
    """The resource at ``/path`` of a site's tree."""
    return site_resource.children[path]


def render(resource: Resource) -> tuple[DummyRequest, bytes]:
    """GET a leaf resource; the request and its body."""
    request = DummyRequest([b""])
    result = resource.render(request)
    if result is not NOT_DONE_YET:
        request.write(result)
        request.finish()
    return request, b"".join(request.written)


class _Collect(Protocol):
    """Sends one HTTP/1.0 request and keeps the whole response, which ends with the connection."""

    def __init__(self, path: bytes) -> None:
        self.path = path
        self.data: list[bytes] = []
        self.done: Deferred[bytes] = Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(b"GET " + self.path + b" HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")

    def dataReceived(self, data: bytes) -> None:
        self.data.append(data)

    def connectionLost(self, reason: Failure) -> None:
        self.done.callback(b"".join(self.data))


async def http_get(port: int, path: bytes) -> bytes:
    """The raw HTTP response to ``GET path`` on a local port."""
    collect = _Collect(path)
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), collect)
    return await collect.done


class Server:
    """A broker, its table and its site with TCP and UDP front ends, on a Clock."""

    def __init__(self, store: str = "memory", **settings) -> None:
        self.broker = make_broker(store=store, max_clients=0, **settings)
        self.table = build_table()
        self.tcp = ConnectionFactory(self.broker, self.table, self.broker.clock)
        self.udp = DatagramFrontEnd(self.broker, self.table, self.broker.clock)
        self.site = build_site(self.broker, self.table, self.broker.clock, self.tcp, self.udp)

    def tcp_client(self, port: int = 40000) -> TcpHarness:
        """A TCP client made by the front end's factory (so its bytes are counted)."""
        harness = TcpHarness(self.broker, port, factory=self.tcp)
        harness.output()
        return harness

    def metrics(self) -> str:
        return generate_latest(child(self.site.resource, b"metrics").registry).decode()  # type: ignore[attr-defined]

    def status(self) -> str:
        request, body = render(child(self.site.resource, b""))
        assert request.finished  # the store answered at once
        return body.decode()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text, None when absent."""
    label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name + (f"{{{label_text}}}" if labels else "")) + r" (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else None


class MetricsTests(SynchronousTestCase):
    """/metrics moves with what the server does."""

    def test_commands_by_verb_and_result(self) -> None:
        """Commands count by the table's verb and by ok or ERR code; unknown verbs count as one."""
        server = Server()
        client = server.tcp_client()
        for line in (b"PING", b"PING", b"FOO", b"BAR", b"RECV", b"NAME not/ok"):
            client.command(line)
        text = server.metrics()
        self.assertEqual(sample(text, "msgsvc_commands_total", verb="PING", result="ok"), 2)
        self.assertEqual(sample(text, "msgsvc_commands_total", verb="unknown", result="unknown-command"), 2)
        self.assertEqual(sample(text, "msgsvc_commands_total", verb="RECV", result="empty"), 1)
        self.assertEqual(sample(text, "msgsvc_commands_total", verb="NAME", result="bad-args"), 1)

    def test_reply_that_comes_later(self) -> None:
        """A command answered later (RECV waiting for a message) is counted when it is answered."""
        server = Server()
        waiter, sender = server.tcp_client(1), server.tcp_client(2)
        waiter.send(b"RECV @q 30\n")
        self.assertIsNone(sample(server.metrics(), "msgsvc_commands_total", verb="RECV", result="ok"))
        sender.command(b"SEND @q hi")
        self.assertEqual(waiter.replies()[0].payload, b"hi")
        self.assertEqual(sample(server.metrics(), "msgsvc_commands_total", verb="RECV", result="ok"), 1)

    def test_messages_queues_clients_bytes(self) -> None:
        """Messages sent and received, queue depths, clients by transport and TCP bytes are exposed."""
        server = Server()
        client = server.tcp_client()
        lines = (b"SEND @jobs a", b"SEND @jobs b", b"SEND c", b"RECV")
        for line in lines:
            client.command(line)
        text = server.metrics()
        self.assertEqual(sample(text, "msgsvc_messages_total", event="sent"), 3)
        self.assertEqual(sample(text, "msgsvc_messages_total", event="received"), 1)
        self.assertEqual(sample(text, "msgsvc_queue_depth", queue="jobs"), 2)
        self.assertEqual(sample(text, "msgsvc_clients", transport="tcp"), 1)
        self.assertEqual(sample(text, "msgsvc_clients", transport="ws"), 0)
        self.assertEqual(
            sample(text, "msgsvc_received_bytes_total", transport="tcp"), sum(len(line) + 1 for line in lines)
        )
        self.assertGreater(sample(text, "msgsvc_sent_bytes_total", transport="tcp") or 0, 100)

    def test_acked_and_dead(self) -> None:
        """ACKed messages and messages moved to the dead letters are counted."""
        server = Server(max_deliveries=1, ttr=5)
        client = server.tcp_client()
        client.command(b"SEND one")
        client.command(b"SEND two")
        (reserved,) = [client.command(b"RESERVE")]
        client.command(b"ACK " + reserved.text.split()[0].encode())
        client.command(b"RESERVE")
        server.broker.clock.advance(5)  # the reservation runs out: its one delivery is spent
        text = server.metrics()
        self.assertEqual(sample(text, "msgsvc_messages_total", event="acked"), 1)
        self.assertEqual(sample(text, "msgsvc_messages_total", event="dead"), 1)

    def test_udp_dropped_by_reason(self) -> None:
        """The UDP front end's drop counters are read at scrape time."""
        server = Server()
        server.udp.count_drop("rate")
        server.udp.count_drop("rate")
        self.assertEqual(sample(server.metrics(), "msgsvc_udp_dropped_total", reason="rate"), 2)

    def test_udp_bytes(self) -> None:
        """Bytes of datagrams received and sent are counted for UDP too."""
        server = Server()
        transport = DatagramTransport()
        server.udp.makeConnection(transport)
        server.udp.datagramReceived(b"PING", ("127.0.0.1", 5000))
        text = server.metrics()
        self.assertEqual(sample(text, "msgsvc_received_bytes_total", transport="udp"), 4)
        self.assertEqual(sample(text, "msgsvc_sent_bytes_total", transport="udp"), len(b"OK PONG\r\n"))

    def test_commit_latency(self) -> None:
        """Each grouped SQLite commit is observed by the latency histogram."""
        server = Server(store="sqlite:" + temp_path(self))
        self.addCleanup(server.broker.stores.close)
        client = server.tcp_client()
        client.command(b"SEND one")
        settle(server.broker)
        self.assertEqual(sample(server.metrics(), "msgsvc_commit_seconds_count"), 1)

    def test_page(self) -> None:
        """/metrics answers Prometheus text with its content type; every server has its own registry."""
        first, second = Server(), Server()
        first.tcp_client().command(b"PING")
        request, body = render(child(first.site.resource, b"metrics"))
        self.assertIn(b"text/plain", request.responseHeaders.getRawHeaders(b"content-type")[0])
        self.assertIn(b'msgsvc_commands_total{result="ok",verb="PING"} 1.0', body)
        self.assertIsNone(sample(second.metrics(), "msgsvc_commands_total", verb="PING", result="ok"))


class StatusPageTests(SynchronousTestCase):
    """The status page shows clients, queues and counters, escaped."""

    def test_content(self) -> None:
        """A named client, a queue's depth, counters, and the refresh without JavaScript."""
        server = Server()
        client = server.tcp_client(40123)
        client.command(b"NAME alice")
        client.command(b"SEND @jobs one")
        client.command(b"SEND @jobs two")
        page = server.status()
        self.assertIn('<meta http-equiv="refresh" content="5">', page)
        self.assertIn("<td>~alice</td><td>tcp</td><td>127.0.0.1:40123</td>", page)
        self.assertIn("<td>jobs</td><td>2</td>", page)
        self.assertIn("<td>messages sent</td><td>2</td>", page)
        self.assertIn("<td>commands answered</td><td>3</td>", page)
        self.assertNotIn("<script", page)

    def test_hostile_name_escaped(self) -> None:
        """Whatever a client is called, the page shows it as text, never as markup."""
        server = Server()
        session = server.broker.open_session(FakeClient(peer=('"><img src=x>', 1)))
        assert session is not None
        session.name = "<script>alert(1)</script>"
        page = server.status()
        self.assertNotIn("<script>", page)
        self.assertNotIn("<img", page)
        self.assertIn("~&lt;script&gt;alert(1)&lt;/script&gt;", page)
        self.assertIn("&quot;&gt;&lt;img src=x&gt;", page)

    def test_security_headers(self) -> None:
        """The page allows no script at all."""
        request, _ = render(child(Server().site.resource, b""))
        policy = request.responseHeaders.getRawHeaders(b"content-security-policy")[0]
        self.assertIn(b"default-src 'none'", policy)

    def test_duration(self) -> None:
        """Uptimes read as days, hours, minutes and seconds, without leading zero units."""
        self.assertEqual([duration(s) for s in (0, 61, 3600, 90061.5)], ["0s", "1m 1s", "1h 0m 0s", "1d 1h 1m 1s"])


class ChatPageTests(SynchronousTestCase):
    """The chat page and its files ship in the package and are served as what they are."""

    def test_files_in_package(self) -> None:
        """Every static file is package data, and the script never renders text as HTML."""
        static = files("msgsvc.web").joinpath("static")
        for name in STATIC_TYPES:
            self.assertTrue(static.joinpath(name).is_file(), name)
        script = static.joinpath("chat.js").read_text()
        self.assertNotIn("innerHTML", script)
        self.assertIn("textContent", script)

    def test_served(self) -> None:
        """/chat is the page; /static/chat.js its script, with its type and a policy allowing only this server."""
        resource = Server().site.resource
        request, body = render(child(resource, b"chat"))
        self.assertIn(b'<script src="/static/chat.js" defer></script>', body)
        request, body = render(child(child(resource, b"static"), b"chat.js"))
        self.assertEqual(request.responseHeaders.getRawHeaders(b"content-type"), [b"text/javascript; charset=utf-8"])
        self.assertIn(b"connect-src 'self'", request.responseHeaders.getRawHeaders(b"content-security-policy")[0])


class EndpointTests(SynchronousTestCase):
    """The address a --web endpoint binds, for the check before twistd forks."""

    def test_listening_address(self) -> None:
        """tcp, tcp6 and ssl descriptions give their interface and port; others none."""
        self.assertEqual(listening_address("tcp:8080"), ("", 8080))
        self.assertEqual(listening_address("tcp:port=8080:interface=127.0.0.1"), ("127.0.0.1", 8080))
        self.assertEqual(listening_address(r"tcp6:8080:interface=\:\:1"), ("::1", 8080))
        self.assertEqual(listening_address("ssl:8443:privateKey=k.pem:certKey=c.pem"), ("", 8443))
        self.assertIsNone(listening_address("unix:/tmp/msgsvc.sock"))


class ServingTests(TestCase):
    """The web interface on a real port."""

    async def test_get_status(self) -> None:
        """GET / over HTTP answers the status page."""
        server = Server()
        web = WebService(reactor, "tcp:0:interface=127.0.0.1")
        web.site = server.site
        web.startService()
        self.addCleanup(web.stopService)
        self.assertEqual(web.url, f"http://127.0.0.1:{web.bound_port}/")
        response = await http_get(web.bound_port, b"/")
        self.assertTrue(response.startswith(b"HTTP/1.0 200 OK\r\n"), response[:40])
        self.assertIn(b"<h1>msgsvc ", response)

    def test_taken_port(self) -> None:
        """A taken --web port stops the start with a one-line StartupError."""
        taken = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        self.addCleanup(taken.stopListening)
        port = taken.getHost().port
        web = WebService(reactor, f"tcp:{port}:interface=127.0.0.1")
        web.site = Server().site
        error = self.assertRaises(StartupError, web.privilegedStartService)
        self.assertEqual(str(error), f"cannot listen on 127.0.0.1:{port} (--web): Address already in use")
        self.assertIsNone(web.port)
