"""The REST API (FastAPI), versioned under `/v1`: build it with `create_app(settings)`."""

from __future__ import annotations

from service.api.app import create_app

__all__ = ["create_app"]
