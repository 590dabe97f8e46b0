# -*- test-case-name: tests.test_metrics -*-
"""``GET /metrics``: the server in Prometheus text format, from a registry of its own.

Everything but the commit latency is read at scrape time from counters the
server keeps anyway (:class:`~msgsvc.web.view.ServerView`): no metric is
updated on a command's path beyond the command table's one counter bump.
The registry is per server (not prometheus_client's global one), so a process
may hold several servers, as the tests do.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from twisted.web.resource import Resource
from twisted.web.server import Request

from msgsvc.store.database import Database
from msgsvc.web.view import ServerView, ready

COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
"""Seconds: a grouped SQLite commit takes well under a millisecond to tens of milliseconds."""


class ServerCollector(Collector):
    """Reads a server's figures when Prometheus scrapes."""

    def __init__(self, view: ServerView) -> None:
        self.view = view

    def collect(self) -> Iterator[Metric]:
        view = self.view
        clients = GaugeMetricFamily("msgsvc_clients", "Connected clients, by transport.", labels=["transport"])
        for transport, count in view.clients_by_transport().items():
            clients.add_metric([transport], count)
        yield clients
        commands = CounterMetricFamily(
            "msgsvc_commands", "Commands answered, by verb and result (ok or the ERR code).", labels=["verb", "result"]
        )
        for verb, result, count in view.commands.by_result():
            commands.add_metric([verb, result], count)
        yield commands
        totals = view.broker.queues.totals
        messages = CounterMetricFamily(
            "msgsvc_messages",
            "Queue messages sent, received, acked, redelivered, moved to the dead letters.",
            labels=["event"],
        )
        for event in ("sent", "received", "acked", "redelivered", "dead"):
            messages.add_metric([event], getattr(totals, event))
        yield messages
        depths = GaugeMetricFamily("msgsvc_queue_depth", "Messages waiting in each queue.", labels=["queue"])
        for queue, depth in ready(view.broker.queues.depths()) or []:
            depths.add_metric([queue], depth)
        yield depths
        received = CounterMetricFamily("msgsvc_received_bytes", "Bytes received, by transport.", labels=["transport"])
        sent = CounterMetricFamily("msgsvc_sent_bytes", "Bytes sent, by transport.", labels=["transport"])
        for transport, traffic in sorted(view.traffic.items()):
            received.add_metric([transport], traffic.received)
            sent.add_metric([transport], traffic.sent)
        yield received
        yield sent
        dropped = CounterMetricFamily(
            "msgsvc_udp_dropped", "UDP datagrams dropped by the safety rules, by reason.", labels=["reason"]
        )
        for reason, count in sorted((view.udp_dropped or {}).items()):
            dropped.add_metric([reason], count)
        yield dropped
        yield GaugeMetricFamily("msgsvc_uptime_seconds", "Seconds since the server started.", value=view.uptime)


def build_registry(view: ServerView) -> CollectorRegistry:
    """A registry of the server's metrics; the commit latency histogram is fed by the SQLite store's commits."""
    registry = CollectorRegistry()
    registry.register(ServerCollector(view))
    commits = Histogram(
        "msgsvc_commit_seconds", "Time each grouped commit took.", buckets=COMMIT_BUCKETS, registry=registry
    )
    durability = view.broker.durability
    if isinstance(durability, Database):
        durability.commit_observers.append(commits.observe)
    return registry


class MetricsPage(Resource):
    """The registry's metrics in Prometheus text format."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return generate_latest(self.registry)
