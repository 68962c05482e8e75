"""`hwnas admin` and `hwnas serve`: a real server on loopback, killed mid-job and restarted,
and one with two API processes whose metrics scrape counts both processes' requests.

The kill tests run uvicorn in a subprocess with a fast lease, submit a real job (a `kit`
job; a `search` job), SIGKILL the server while the job runs, start it again on the same
data folder, and check the job finishes, its files are whole, and the device and user
survived. The search must resume from its checkpoint, not start over: a score changed in
the checkpoint while the server is down is in the finished report.
"""

from __future__ import annotations

import io
import json
import signal
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from service.cli import main
from service.testing import free_port, start_server, stop_server
from tests.service.conftest import NB201, cli_user
from tests.service.test_api import DEVICE


def test_admin_users_and_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HWNAS_DATA_DIR", str(tmp_path))
    assert main(["admin", "user", "alice"]) == 0
    assert main(["admin", "token", "alice", "--name", "laptop"]) == 0
    token = capsys.readouterr().out.splitlines()[-1]
    assert token.startswith("hwnas_")
    assert main(["admin", "users"]) == 0
    assert "1:laptop" in capsys.readouterr().out
    assert main(["admin", "user", "alice"]) == 2
    assert "error: user 'alice' exists" in capsys.readouterr().err
    assert main(["admin", "token", "carol"]) == 2
    assert "error: user 'carol' not found" in capsys.readouterr().err
    assert main(["admin", "revoke", "1"]) == 0


FAST = {"HWNAS_LEASE_S": "2", "HWNAS_HEARTBEAT_S": "0.2", "HWNAS_POLL_S": "0.1",
        "HWNAS_WORKERS": "1"}
FINAL = {"succeeded", "failed", "cancelled"}


class _KillableServer:
    """`hwnas serve` on a free port with FAST leases over the data folder `data`; `kill`
    SIGKILLs it, `start` starts it again on the same folder and port."""

    def __init__(self, data: Path) -> None:
        self.data, self.port = data, free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.start()

    def start(self) -> None:
        self.proc = start_server(self.data, self.port, env=FAST)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def __enter__(self) -> _KillableServer:
        return self

    def __exit__(self, *exc: object) -> None:
        stop_server(self.proc, 30)


def _wait_for(url: str, headers: dict[str, str], job_id: int, states: set[str],
              timeout_s: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = httpx.get(f"{url}/jobs/{job_id}", headers=headers).json()
        if job["state"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {states}: {job}")


@pytest.mark.slow
def test_kill_and_restart_mid_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    headers = cli_user(tmp_path, monkeypatch, capsys)
    with _KillableServer(tmp_path) as server:
        url = server.url
        device = httpx.post(f"{url}/devices", json=DEVICE, headers=headers).json()
        kit_url = (f"{url}/devices/{device['id']}/kit?space=mbv2&param=resolution=32"
                   "&param=width=0.25")
        job = httpx.get(kit_url, headers=headers).json()["job"]
        for _ in range(600):
            state = httpx.get(f"{url}/jobs/{job['id']}", headers=headers).json()
            if state["progress"] > 0.05:
                break
            time.sleep(0.1)
        assert state["state"] == "running", state
        server.kill()
        server.start()
        state = _wait_for(url, headers, job["id"], FINAL, timeout_s=180)
        assert state["state"] == "succeeded" and state["attempts"] == 2, state
        kit = httpx.get(kit_url, headers=headers)
        assert kit.status_code == 200
        with zipfile.ZipFile(io.BytesIO(kit.content)) as archive:
            assert archive.testzip() is None
            assert len(archive.namelist()) == state["result"]["entries"] + 1
        assert httpx.get(f"{url}/devices", headers=headers).json() == [device]


@pytest.mark.slow
def test_kill_and_restart_mid_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str],
                                     measured: dict[str, Any]) -> None:
    headers = cli_user(tmp_path, monkeypatch, capsys)
    with _KillableServer(tmp_path) as server:
        url = server.url
        device = httpx.post(f"{url}/devices", json=DEVICE, headers=headers).json()
        base = f"{url}/devices/{device['id']}"
        upload = httpx.post(f"{base}/measurements", json=measured["doc"], headers=headers)
        assert upload.status_code == 201, upload.text
        fit = httpx.post(f"{base}/predictor", json={"kind": "lut"}, headers=headers).json()
        assert _wait_for(url, headers, fit["id"], FINAL)["state"] == "succeeded"
        budget = 2 * max(m["median_ms"] for m in measured["doc"]["archs"])
        created = httpx.post(f"{url}/searches", headers=headers, json={
            "space": "nb201", "params": NB201, "estimator": "zico", "strategy": "evolution",
            "targets": [{"device_id": device["id"], "budget_ms": budget}],
            "limits": {"evaluations": 48, "minutes": 10}, "formats": ["onnx"]})
        assert created.status_code == 202, created.text
        search = created.json()
        state_file = tmp_path / "artifacts" / "jobs" / str(search["id"]) / "search_state.json"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            # Replaced atomically after every batch, so a read sees a whole file.
            live = json.loads(state_file.read_text()).get("live") if state_file.exists() \
                else None
            if live and live["used"] >= 16:
                break
            time.sleep(0.02)
        server.kill()
        assert not (state_file.parent / "report.json").exists(), "it ended before the kill"
        state = json.loads(state_file.read_text())
        # Mark the checkpoint: a search that started over would never report this score.
        marked = state["evaluated"][0]
        marked["score"] = 1e6
        key = next(k for k in (f"{marked['stage']}|{marked['arch']}", marked["arch"])
                   if k in state["scores"])  # scores are per stage for some estimators
        state["scores"][key] = 1e6
        state_file.write_text(json.dumps(state))
        server.start()
        job = _wait_for(url, headers, search["id"], FINAL)
        assert job["state"] == "succeeded" and job["attempts"] == 2, job
        report = job["result"]["report"]
        assert report["evaluations"] <= 48
        assert any(p["arch"] == marked["arch"] and p["score"] == 1e6
                   for p in report["pareto"]), report["pareto"]
        listed = {a["name"]: a["bytes"] for a in httpx.get(
            f"{url}/searches/{search['id']}/artifacts", headers=headers).json()}
        assert {"model.onnx", "report.json"} <= set(listed)
        model = httpx.get(f"{url}/searches/{search['id']}/artifacts/model.onnx",
                          headers=headers)
        assert model.status_code == 200 and len(model.content) == listed["model.onnx"]
        session = ort.InferenceSession(model.content, providers=["CPUExecutionProvider"])
        shape = session.get_inputs()[0].shape
        out = session.run(None, {session.get_inputs()[0].name:
                                 np.zeros(shape, dtype=np.float32)})[0]
        assert out.shape == (shape[0], NB201.get("classes", 10)) and np.isfinite(out).all()
        assert httpx.get(f"{url}/devices", headers=headers).json() == [device]


def _route_counts(families: Iterable[Metric], route: str) -> float:
    """The request count of `route` (its template under /v1) over all methods and statuses."""
    return sum(sample.value for family in families for sample in family.samples
               if sample.name == "hwnas_request_seconds_count"
               and sample.labels["route"] == route)


@pytest.mark.slow
def test_metrics_sum_all_api_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    headers = cli_user(tmp_path, monkeypatch, capsys)
    temp = tmp_path / "tmp"  # where `serve` makes its metrics folder
    temp.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    server = start_server(tmp_path, port, env={"HWNAS_PROCESSES": "2", "TMPDIR": str(temp)})
    try:
        (shared,) = temp.glob("hwnas-metrics-*")
        made = 0
        # Fresh connections, until both processes have served some (the kernel picks
        # which process accepts each one).
        while made < 400:
            for _ in range(20):
                assert httpx.get(f"{url}/devices", headers=headers).status_code == 200
            made += 20
            per_process = [_route_counts(MultiProcessCollector.merge([str(file)]), "/devices")
                           for file in shared.glob("histogram_*.db")]
            if sum(count > 0 for count in per_process) == 2:
                break
        assert sorted(count > 0 for count in per_process) == [True, True], per_process
        first = list(text_string_to_metric_families(httpx.get(f"{url}/metrics").text))
        assert _route_counts(first, "/devices") == made
        # A scrape is counted after it is answered: in the next scrape, not its own.
        assert _route_counts(first, "/metrics") == 0
        second = list(text_string_to_metric_families(httpx.get(f"{url}/metrics").text))
        assert _route_counts(second, "/metrics") == 1
        jobs = [s for f in second if f.name == "hwnas_jobs" for s in f.samples]
        assert [s.labels for s in jobs if s.labels["state"] == "queued"] == [
            {"state": "queued"}]  # from the store once, not once per process
    finally:
        stop_server(server, 30)
    assert not shared.exists()
