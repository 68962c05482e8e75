"""Prometheus metrics of one app: request latency by route, and jobs by state.

Each app has its own `CollectorRegistry` (no global state, so tests build many apps).
Jobs are counted from the store when `/v1/metrics` is scraped. Request latency is timed
by :class:`RequestMetrics`, a plain ASGI middleware: Starlette's `@app.middleware("http")`
runs each request through an extra task and memory streams, which on this path cost
about as much as the database query.

Several API processes (`hwnas serve --processes N`) share their request latencies
through prometheus_client's multiprocess mode: `serve` sets `PROMETHEUS_MULTIPROC_DIR`
to a fresh folder before it spawns them, so each process's histogram lives in its own
file there, and a scrape, whichever process answers it, sums every process's file (the
processes that died included: request counts never go down). The jobs gauge still comes
from the store, once, not once per process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.store import Store

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
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
    """The app's registry and its request-latency histogram.

    With `PROMETHEUS_MULTIPROC_DIR` set (it must be before prometheus_client is imported,
    which is when prometheus_client reads it), the histogram is this process's share and
    the registry reports all processes' shares from that folder.
    """

    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry()
        shared = os.environ.get(MULTIPROC_ENV)
        # In multiprocess mode the histogram's values are read back from the folder by
        # the collector; registering the histogram as well would export it twice.
        self.latency = Histogram(
            "hwnas_request_seconds", "Request latency by route", ["method", "route", "status"],
            registry=None if shared else self.registry, buckets=LATENCY_BUCKETS)
        if shared:
            MultiProcessCollector(self.registry, path=shared)
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
