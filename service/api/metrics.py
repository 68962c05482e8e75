"""Prometheus metrics of one app: request latency by route, and jobs by state.

Each app has its own `CollectorRegistry` (no global state, so tests build many apps).
Jobs are counted from the store when `/v1/metrics` is scraped.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

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
