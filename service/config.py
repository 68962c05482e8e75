"""Service settings, read from `HWNAS_*` environment variables (pydantic-settings).

Built by :func:`get_settings` (or `Settings(...)` in tests), never at import. Every field
is listed, with its variable, in `deploy/README.md`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the API, the store and the job runner are configured with.

    Attributes:
        data_dir: Root of the SQLite file (by default) and of the artifact store.
        database_url: SQLAlchemy URL; empty means `sqlite:///<data_dir>/hwnas.db`. For
            PostgreSQL: `postgresql+psycopg://user:password@host:5432/hwnas`.
        executor: `inprocess` (each job in a child process of this one, at most `workers`
            at once), `thread` (in this process's threads: light jobs, tests) or `ray`.
        ray_address: Ray cluster to join (`ray://head:10001`, `auto`); empty starts a
            local Ray instance.
        workers: Jobs run at once by this process; 0 makes it an API-only process that
            queues jobs for a separate `hwnas serve --worker-only` process.
        lease_s: A running job whose heartbeat is older than this is taken to be orphaned
            (its process died) and is re-queued.
        heartbeat_s: How often a worker renews its jobs' leases and reads cancel requests.
        poll_s: How often an idle worker looks for queued jobs.
        max_attempts: A job re-queued this many times (its worker kept dying) fails.
        max_upload_bytes: Largest request body accepted (measurement uploads included).
        cors_origins: Origins allowed by CORS (`["*"]` for any).
        token_cache_s: How long the API remembers a valid token's user without asking
            the database; a token revoked from the CLI still works for at most this long.
            0 asks the database on every request.
    """

    model_config = SettingsConfigDict(env_prefix="HWNAS_", extra="ignore")

    data_dir: Path = Path("hwnas-data")
    database_url: str = ""
    executor: Literal["inprocess", "thread", "ray"] = "inprocess"
    ray_address: str = ""
    workers: int = Field(default=2, ge=0, le=64)
    lease_s: float = Field(default=30.0, gt=0)
    heartbeat_s: float = Field(default=2.0, gt=0)
    poll_s: float = Field(default=0.5, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    max_upload_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    cors_origins: list[str] = Field(default_factory=list)
    token_cache_s: float = Field(default=5.0, ge=0, le=300)

    @model_validator(mode="after")
    def _lease_longer_than_heartbeat(self) -> Settings:
        if self.lease_s <= self.heartbeat_s:
            raise ValueError(
                f"lease_s ({self.lease_s}) must be longer than heartbeat_s ({self.heartbeat_s})"
            )
        return self

    @property
    def db_url(self) -> str:
        """The database URL, defaulting to a SQLite file in `data_dir`."""
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'hwnas.db'}"

    @property
    def artifacts_dir(self) -> Path:
        """Where job outputs, kits and uploaded files live."""
        return self.data_dir / "artifacts"


def get_settings() -> Settings:
    """Settings from the environment (`HWNAS_*`)."""
    return Settings()
