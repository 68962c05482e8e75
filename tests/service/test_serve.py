"""`hwnas admin` and `hwnas serve`: a real server on loopback, killed mid-job and restarted,
and one with two API processes whose metrics scrape counts both processes' requests.

The kill test runs uvicorn in a subprocess with a fast lease, submits a real `kit` job,
SIGKILLs the server while the job runs, starts it again on the same data folder, and
checks the job finishes, its kit is whole, and the device and user survived.
"""

from __future__ import annotations

import io
import signal
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path

import httpx
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from service.cli import main
from service.testing import free_port, start_server, stop_server
from tests.service.conftest import cli_user
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


@pytest.mark.slow
def test_kill_and_restart_mid_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    headers = cli_user(tmp_path, monkeypatch, capsys)
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    server = start_server(tmp_path, port, env=FAST)
    try:
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
        server.send_signal(signal.SIGKILL)
        server.wait()
        server = start_server(tmp_path, port, env=FAST)
        for _ in range(1800):
            state = httpx.get(f"{url}/jobs/{job['id']}", headers=headers).json()
            if state["state"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.1)
        assert state["state"] == "succeeded" and state["attempts"] == 2, state
        kit = httpx.get(kit_url, headers=headers)
        assert kit.status_code == 200
        with zipfile.ZipFile(io.BytesIO(kit.content)) as archive:
            assert archive.testzip() is None
            assert len(archive.namelist()) == state["result"]["entries"] + 1
        assert httpx.get(f"{url}/devices", headers=headers).json() == [device]
    finally:
        stop_server(server, 30)


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
