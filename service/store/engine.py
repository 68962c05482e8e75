"""Engine factory and programmatic Alembic migrations.

`make_engine(url)` builds the SQLAlchemy engine (SQLite file or PostgreSQL); `migrate`
brings its schema to the newest revision in `service/migrations/versions/`, so a server
upgrades its own database at start-up, with no `alembic.ini` to ship.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url


def make_engine(url: str) -> Engine:
    """A pooled engine for `url`; SQLite files get WAL, a busy timeout and foreign keys.

    Raises:
        ValueError: `url` is not a database URL SQLAlchemy knows (the message names it).
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # ArgumentError and friends: one readable line
        raise ValueError(f"database_url: cannot parse {url!r} ({exc})") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at `service/migrations` that runs on `engine`."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("service") / "migrations"))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Upgrade the database behind `engine` to the newest schema revision."""
    command.upgrade(alembic_config(engine), "head")
