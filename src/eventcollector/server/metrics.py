"""Prometheus metrics of one app, in a registry of its own (apps never share counters)."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from eventcollector.collector import EventCollector

__all__ = ["Metrics"]

# Ingest latency from first body byte to commit: sub-millisecond to seconds.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    """The counters the server updates, and the ``/metrics`` endpoint."""

    def __init__(self, collector: EventCollector) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.accepted = Counter(
            "eventcollector_events_accepted", "Events stored.", ["system"], registry=r
        )
        self.rejected = Counter(
            "eventcollector_events_rejected",
            "Events refused as invalid (system empty when it was not valid).",
            ["system"],
            registry=r,
        )
        self.duplicates = Counter(
            "eventcollector_events_duplicate",
            "Events whose id was already stored.",
            ["system"],
            registry=r,
        )
        self.latency = Histogram(
            "eventcollector_ingest_seconds",
            "Ingest request time from body read to commit.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.http_rejections = Counter(
            "eventcollector_http_rejections",
            "Requests refused by a limit or policy, by reason.",
            ["reason"],
            registry=r,
        )
        queue = Gauge(
            "eventcollector_ingest_queue_depth",
            "Events accepted but not yet committed.",
            registry=r,
        )
        queue.set_function(lambda: collector.pending)
        subscribers = Gauge(
            "eventcollector_subscribers", "Live subscribers and streams.", registry=r
        )
        subscribers.set_function(lambda: collector.subscriber_count)

    def count(self, counter: Counter, systems: Tally[str]) -> None:
        # One update per system and request, not per event: cheap at 50k events/s.
        for system, n in systems.items():
            counter.labels(system).inc(n)

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
