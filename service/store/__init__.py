"""The service's storage: database (SQLAlchemy + Alembic) and artifacts (files).

`Store` is the data-access layer (the only code that opens sessions); `LocalArtifacts`
holds job outputs behind the `ArtifactStore` interface.
"""

from __future__ import annotations

from service.store.artifacts import ArtifactNameError, ArtifactStore, LocalArtifacts, check_name
from service.store.engine import make_engine, migrate
from service.store.jobs import Beat, ClaimedJob, Store
from service.store.repository import ConflictError, NotFoundError

__all__ = [
    "ArtifactNameError",
    "ArtifactStore",
    "Beat",
    "ClaimedJob",
    "ConflictError",
    "LocalArtifacts",
    "NotFoundError",
    "Store",
    "check_name",
    "make_engine",
    "migrate",
]
