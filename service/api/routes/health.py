"""`/v1/health` and `/v1/metrics` (Prometheus text format); neither needs a token."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import text

from service.api.deps import ServicesDep
from service.schemas import API_VERSION, Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health(services: ServicesDep) -> Health:
    """The service answers and its database too."""
    with services.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    worker = services.worker
    return Health(status="ok", database=services.engine.dialect.name,
                  executor=worker.executor.name if worker else "none",
                  workers=services.settings.workers if worker else 0,
                  version=API_VERSION)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics: `hwnas_jobs{state}`, `hwnas_request_seconds` by route."""
    return Response(services.metrics.render(), media_type="text/plain; version=0.0.4")
