"""The web dashboard at `/ui`: devices, predictor trust, live searches, Pareto fronts.

A static single-page app (`static/`: HTML, CSS, ES modules) that talks to the `/v1` API
with the user's bearer token, plus a few token-protected helper routes of its own
(`/ui/api/...`: the names a form offers, a space's slots). Charts are drawn by Plotly.js,
served from the `plotly` Python package's own `plotly.min.js`: nothing comes from a CDN,
so the dashboard works offline.

`mount(app)` adds all of it to the service's FastAPI app.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from service.dashboard.routes import STATIC, router

__all__ = ["mount"]


def mount(app: FastAPI) -> None:
    """Serve the dashboard from `app`: `/ui/` (the page), `/ui/static/`, `/ui/api/`."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="dashboard-static")
