"""The read path: a valid token's user is remembered for `token_cache_s` seconds (never
an unknown token; a revocation in the same process takes effect at once), request
latency is labelled by route, and `hwnas serve --processes 2` serves the API from two
processes while each job runs once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.api import create_app
from service.schemas import FINAL_STATES
from service.store import Store, make_engine, migrate
from service.testing import free_port, start_server, stop_server
from tests.service.conftest import fast_settings
from tests.service.test_api import DEVICE


def _store(tmp_path: Path, token_cache_s: float) -> Store:
    engine = make_engine(f"sqlite:///{tmp_path / 'hwnas.db'}")
    migrate(engine)
    return Store(engine, token_cache_s=token_cache_s)


def test_token_cache_remembers_found_users_for_a_while(tmp_path: Path) -> None:
    store = _store(tmp_path, token_cache_s=0.5)
    store.create_user("alice")
    record, secret = store.create_token("alice", "laptop")
    assert store.cached_user(secret) is None  # never looked up yet
    assert store.user_for_token(secret).name == "alice"
    assert store.cached_user(secret).name == "alice"
    assert store.user_for_token("hwnas_unknown") is None
    assert store.cached_user("hwnas_unknown") is None
    time.sleep(0.6)
    assert store.cached_user(secret) is None  # expired
    store.user_for_token(secret)
    store.revoke_token(record.id)
    assert store.cached_user(secret) is None
    assert store.user_for_token(secret) is None


def test_no_token_cache_when_disabled(tmp_path: Path) -> None:
    store = _store(tmp_path, token_cache_s=0)
    store.create_user("alice")
    _, secret = store.create_token("alice", "laptop")
    assert store.user_for_token(secret).name == "alice"
    assert store.cached_user(secret) is None


def test_api_refuses_a_token_revoked_in_process(tmp_path: Path) -> None:
    with TestClient(create_app(fast_settings(tmp_path), start_worker=False)) as client:
        store: Store = client.app.state.services.store
        store.create_user("alice")
        record, secret = store.create_token("alice", "laptop")
        headers = {"Authorization": f"Bearer {secret}"}
        assert client.get("/v1/devices", headers=headers).status_code == 200
        assert client.get("/v1/devices", headers=headers).status_code == 200  # cached
        store.revoke_token(record.id)
        refused = client.get("/v1/devices", headers=headers)
        assert refused.status_code == 401 and "bearer token" in refused.json()["detail"]


def test_request_latency_is_labelled_by_route_and_status(tmp_path: Path) -> None:
    with TestClient(create_app(fast_settings(tmp_path), start_worker=False)) as client:
        store: Store = client.app.state.services.store
        store.create_user("alice")
        headers = {"Authorization": f"Bearer {store.create_token('alice', 'laptop')[1]}"}
        client.get("/v1/devices/7", headers=headers)
        client.get("/v1/nowhere")
        metrics = client.get("/v1/metrics").text
    assert ('hwnas_request_seconds_count{method="GET",route="/devices/{device_id}",'
            'status="404"} 1.0') in metrics
    assert 'route="unmatched",status="404"} 1.0' in metrics


@pytest.mark.slow
def test_serve_with_api_processes_runs_each_job_once(tmp_path: Path) -> None:
    env = {**os.environ, "HWNAS_DATA_DIR": str(tmp_path)}
    hwnas = [sys.executable, "-m", "service.cli", "admin"]
    subprocess.run([*hwnas, "user", "alice"], env=env, check=True, capture_output=True)
    token = subprocess.run([*hwnas, "token", "alice"], env=env, check=True,
                           capture_output=True, text=True).stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    server = start_server(tmp_path, port, env={"HWNAS_PROCESSES": "2", "HWNAS_WORKERS": "1",
                                               "HWNAS_POLL_S": "0.1"})
    try:
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        device = httpx.post(f"{url}/devices", json=DEVICE, headers=headers).json()
        reads = [httpx.get(f"{url}/devices/{device['id']}", headers=headers)
                 for _ in range(20)]
        kit = (f"{url}/devices/{device['id']}/kit?space=nb201&param=cells=1"
               "&param=channels=4&param=resolution=8")
        job = httpx.get(kit, headers=headers).json()["job"]
        for _ in range(600):
            job = httpx.get(f"{url}/jobs/{job['id']}", headers=headers).json()
            if job["state"] in FINAL_STATES:
                break
            time.sleep(0.2)
    finally:
        stop_server(server)
    assert len(children) >= 2  # the API children (uvicorn may add a resource tracker)
    assert all(r.status_code == 200 and r.json() == device for r in reads)
    assert job["state"] == "succeeded" and job["attempts"] == 1, job
