"""What one running app holds: settings, store, artifacts, worker, metrics.

Built by :func:`build_services` inside `create_app`'s lifespan, never at import, and
reached by routes through the dependencies in :mod:`service.api.deps`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from service.api.metrics import Metrics
from service.config import Settings
from service.jobs.worker import Worker
from service.store import ArtifactStore, LocalArtifacts, Store, make_engine, migrate


@dataclass
class Services:
    """The app's long-lived objects."""

    settings: Settings
    engine: Engine
    store: Store
    artifacts: ArtifactStore
    metrics: Metrics
    worker: Worker | None = None


def build_services(settings: Settings, *, start_worker: bool) -> Services:
    """Open (and migrate) the database, the artifact folder, and start the worker."""
    engine = make_engine(settings.db_url)
    migrate(engine)
    store = Store(engine, token_cache_s=settings.token_cache_s)
    artifacts = LocalArtifacts(settings.artifacts_dir)
    services = Services(settings, engine, store, artifacts, Metrics(store))
    if start_worker and settings.workers > 0:
        services.worker = Worker(store, artifacts, settings).start()
    return services


def close_services(services: Services) -> None:
    """Stop the worker (running jobs go back to the queue) and close the pool."""
    if services.worker is not None:
        services.worker.stop()
    services.engine.dispose()
