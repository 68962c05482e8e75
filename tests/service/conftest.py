"""Fixtures of the service tests: settings on a temp dir, an app, users with tokens, the
store on SQLite and on a real PostgreSQL server, and one real measurements file."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api import create_app
from service.cli import main
from service.config import Settings
from service.store import Store, make_engine, migrate
from tests.conftest import SMALL_PARAMS
from tests.service.postgres import fresh_database, postgres_server

NB201 = SMALL_PARAMS["nb201"]


def fast_settings(tmp: Path, **overrides: Any) -> Settings:
    """Settings with short heartbeats and leases, so recovery tests take seconds."""
    values: dict[str, Any] = {"data_dir": tmp, "workers": 2, "heartbeat_s": 0.1,
                              "lease_s": 1.0, "poll_s": 0.05}
    return Settings(**{**values, **overrides})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return fast_settings(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app with no worker: jobs stay queued (tests of the API alone)."""
    with TestClient(create_app(settings, start_worker=False)) as test_client:
        yield test_client


def auth(client: TestClient, name: str) -> dict[str, str]:
    store: Store = client.app.state.services.store
    store.create_user(name)
    return {"Authorization": f"Bearer {store.create_token(name, 'test')[1]}"}


def cli_user(data: Path, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str], name: str = "alice") -> dict[str, str]:
    """`name` and a token made with `hwnas admin` in the data folder `data` (which the
    environment then points at, for a server started after); its bearer header."""
    monkeypatch.setenv("HWNAS_DATA_DIR", str(data))
    main(["admin", "user", name])
    main(["admin", "token", name])
    return {"Authorization": f"Bearer {capsys.readouterr().out.splitlines()[-1]}"}


@pytest.fixture
def alice(client: TestClient) -> dict[str, str]:
    return auth(client, "alice")


@pytest.fixture
def bob(client: TestClient) -> dict[str, str]:
    return auth(client, "bob")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str | None]:
    try:
        with postgres_server() as url:
            yield url
    except RuntimeError as exc:
        yield f"unavailable: {exc}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The same store suite on a SQLite file and on a real PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        server = request.getfixturevalue("pg_server")
        if server.startswith("unavailable"):
            pytest.skip(f"PostgreSQL {server}")
        url = fresh_database(server)
    engine = make_engine(url)
    migrate(engine)
    yield Store(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real kit of the small nb201 space measured here on onnxruntime (a few seconds)."""
    from models.kit import make_kit
    from spaces import get_space

    folder = tmp_path_factory.mktemp("measured")
    make_kit(get_space("nb201", **NB201), "onnx", folder / "kit.zip", archs=4)
    subprocess.run([sys.executable, "-m", "profilers", "run", str(folder / "kit.zip"),
                    "--backend", "onnxruntime", "--runs", "5", "--rounds", "2", "--quiet",
                    "-o", str(folder / "measurements.json")], check=True)
    return {"kit": folder / "kit.zip", "path": folder / "measurements.json",
            "doc": json.loads((folder / "measurements.json").read_text())}
