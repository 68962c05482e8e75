"""Prometheus metrics of one app: request latency by route, and jobs by state.

Each app has its own `CollectorRegistry` (no global state, so tests build many apps).
Jobs are counted from the store when `/v1/metrics` is scraped. Request latency is timed
by :class:`RequestMetrics`, a plain ASGI middleware: Starlette's `@app.middleware("http")`
runs each request through an extra task and memory streams, which on this path cost
about as much as the database query.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.store import Store

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class _JobCollector(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("hwnas_jobs", "Jobs by state", labels=["state"])
        for state, count in self.store.counts().items():
            family.add_metric([state], count)
        yield family


class Metrics:
    """The app's registry and its request-latency histogram."""

    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "hwnas_request_seconds", "Request latency by route", ["method", "route", "status"],
            registry=self.registry, buckets=LATENCY_BUCKETS)
        self.registry.register(_JobCollector(store))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.latency.labels(method, route, str(status)).observe(seconds)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware: each HTTP request's latency into the app's `Metrics`, labelled by
    method, route template (`unmatched` for none) and status (500 if the app raised)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            services = getattr(scope["app"].state, "services", None)
            if services is not None:
                route = getattr(scope.get("route"), "path", "unmatched")
                services.metrics.observe(scope["method"], route, status,
                                         time.perf_counter() - start)
