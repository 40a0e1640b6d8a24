"""Prometheus metrics of the service (one registry per app, so that several apps — tests — coexist).

HTTP: ``kalasag_http_requests_total{route,method,status}``, ``kalasag_http_request_seconds{route}``
(histogram). Transfers: ``kalasag_transfers_applied_total{source}``, ``kalasag_transfers_duplicate_total
{source}``, ``kalasag_transfers_rejected_total{source,reason}``, ``kalasag_transfers_held_total``,
``kalasag_request_transfers`` and ``kalasag_submit_batch_transfers`` (histograms of transfers per
request and per scorer call — the group-commit size).
NATS: ``kalasag_nats_messages_total{outcome}``. State: every number in ``StreamScorer.stats()`` as a
gauge ``kalasag_scorer_<name>`` (accounts held, log position, …), read at scrape time. Process:
``process_resident_memory_bytes``, ``process_cpu_seconds_total``, ``python_gc_*``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

disable_created_metrics()  # no *_created series: they double the output and nobody graphs them
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class _StatsCollector(Collector):
    def __init__(self) -> None:
        self.stats: dict[str, Any] = {}

    def collect(self):  # noqa: ANN201 - prometheus_client protocol
        for name, value in sorted(self.stats.items()):
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            clean = "".join(c if c.isalnum() else "_" for c in name).lower()
            yield GaugeMetricFamily(f"kalasag_scorer_{clean}", f"StreamScorer.stats()['{name}']", value=float(value))


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("kalasag_http_requests", "HTTP requests", ["route", "method", "status"], registry=r)
        self.latency = Histogram("kalasag_http_request_seconds", "HTTP request latency (server side)", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.applied = Counter("kalasag_transfers_applied", "New transfers appended to the log and applied", ["source"], registry=r)
        self.duplicates = Counter("kalasag_transfers_duplicate", "Transfers whose txn_id was already in the log (not counted again)",
                                  ["source"], registry=r)
        self.rejected = Counter("kalasag_transfers_rejected", "Requests/messages rejected, by reason code", ["source", "reason"], registry=r)
        self.held = Counter("kalasag_transfers_held", "Transfers answered with hold=true", registry=r)
        sizes = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
        self.request_size = Histogram("kalasag_request_transfers", "Transfers per accepted request or NATS message",
                                      buckets=sizes, registry=r)
        self.batch = Histogram("kalasag_submit_batch_transfers", "Transfers per StreamScorer.submit call (group commit)",
                               buckets=sizes, registry=r)
        self.nats = Counter("kalasag_nats_messages", "NATS messages by outcome (acked, duplicate, terminated)", ["outcome"], registry=r)
        self._stats = _StatsCollector()
        r.register(self._stats)
        ProcessCollector(registry=r)   # process_resident_memory_bytes, process_cpu_seconds_total, …
        GCCollector(registry=r)        # python_gc_collections_total{generation}, …

    def count_results(self, results: list[Any], source: str) -> None:
        dup = sum(1 for x in results if x.duplicate)
        held = sum(1 for x in results if x.hold)
        if len(results) - dup:
            self.applied.labels(source).inc(len(results) - dup)
        if dup:
            self.duplicates.labels(source).inc(dup)
        if held:
            self.held.inc(held)

    def render(self, stats: dict[str, Any]) -> bytes:
        self._stats.stats = stats
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request by route template."""

    def __init__(self, app: Callable, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(name, scope.get("method", ""), str(status)).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - start)
