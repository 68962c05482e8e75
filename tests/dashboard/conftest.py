"""Fixtures of the dashboard tests: the app on a temp SQLite file with a user (for its
routes), and for the browser suite a real `hwnas serve`, Debian's Chromium driven by
Playwright (skipped with a reason where either is missing), and screenshots saved under
`out/screenshots/` (or `HWNAS_SCREENSHOT_DIR`), named in pytest's summary."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api import create_app
from service.config import Settings
from service.store import Store, make_engine, migrate
from service.testing import free_port, start_server, stop_server
from tests.service.conftest import auth, fast_settings


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The app with no worker (the dashboard's own routes need none)."""
    with TestClient(create_app(fast_settings(tmp_path), start_worker=False)) as test_client:
        yield test_client


@pytest.fixture
def alice(client: TestClient) -> dict[str, str]:
    return auth(client, "alice")


CHROMIUM = Path(os.environ.get("HWNAS_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(os.environ.get("HWNAS_SCREENSHOT_DIR", "out/screenshots")).resolve()


@dataclass(frozen=True)
class LiveServer:
    """`hwnas serve` in a child process: its base URL, data folder and alice's token."""

    url: str
    data: Path
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real server (uvicorn, SQLite, two job workers) with the user alice."""
    data = tmp_path_factory.mktemp("live")
    engine = make_engine(Settings(data_dir=data).db_url)
    migrate(engine)
    store = Store(engine)
    store.create_user("alice")
    token = store.create_token("alice", "browser")[1]
    engine.dispose()
    port = free_port()
    server = start_server(data, port, env={"HWNAS_WORKERS": "2", "HWNAS_POLL_S": "0.1",
                                           "HWNAS_HEARTBEAT_S": "0.5"})
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", data=data, token=token)
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium driven by Playwright; skipped where either is missing."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set "
                    "HWNAS_CHROMIUM): the dashboard's browser tests need one")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, live: LiveServer) -> Iterator[Any]:
    """A fresh browser tab at phone-or-laptop size; fails the test on any script error or
    console error the page logged."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900},
                                  base_url=live.url)
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    tab.on("console", lambda msg: errors.append(f"console: {msg.text}")
           if msg.type == "error" and not msg.text.startswith("Failed to load resource")
           else None)
    yield tab
    context.close()
    assert not errors, errors


def screenshot(tab: Any, name: str) -> Path:
    """Save a full-page screenshot of `tab` as SCREENSHOTS/NAME.png (a test artifact)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SCREENSHOTS.is_dir() and any(SCREENSHOTS.glob("*.png")):
        terminalreporter.write_line(f"dashboard screenshots: {SCREENSHOTS}")
