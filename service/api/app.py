"""The FastAPI application factory.

`create_app(settings)` builds a new app; its lifespan opens the store (running Alembic
migrations), starts the job worker (unless `start_worker=False`, for API-only processes
and tests that drive the worker themselves) and stops it on shutdown, handing running
jobs back to the queue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service.api.errors import BodyLimitMiddleware, install_handlers
from service.api.metrics import RequestMetrics
from service.api.routes import devices, health, measurements, predictors, searches
from service.api.services import build_services, close_services
from service.config import Settings, get_settings
from service.dashboard import mount as mount_dashboard
from service.schemas import API_VERSION

DESCRIPTION = """Hardware-aware NAS as a service: describe a device, download its profiling
kit, upload the board's measurements, fit a latency predictor, search the most accurate
architecture under the device's budget, and download it as ONNX or TFLite.

Every resource belongs to the user whose bearer token created it; another user's ids
answer 404. Errors are JSON `{"detail": ..., "field": ...}`."""


def create_app(settings: Settings | None = None, *, start_worker: bool = True) -> FastAPI:
    """A new app on `settings` (default: from the `HWNAS_*` environment)."""
    settings = settings if settings is not None else get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = build_services(settings, start_worker=start_worker)
        try:
            yield
        finally:
            close_services(app.state.services)

    app = FastAPI(title="hwnas", version=API_VERSION, description=DESCRIPTION,
                  lifespan=lifespan, openapi_url="/v1/openapi.json", docs_url="/v1/docs",
                  redoc_url=None)
    install_handlers(app)
    for module in (health, devices, measurements, predictors, searches):
        app.include_router(module.router, prefix="/v1")
    mount_dashboard(app)

    app.add_middleware(RequestMetrics)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    return app
