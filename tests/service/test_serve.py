"""`hwnas admin` and `hwnas serve`: a real server on loopback, killed mid-job and restarted.

The kill test runs uvicorn in a subprocess with a fast lease, submits a real `kit` job,
SIGKILLs the server while the job runs, starts it again on the same data folder, and
checks the job finishes, its kit is whole, and the device and user survived.
"""

from __future__ import annotations

import io
import signal
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from service.cli import main
from service.testing import free_port, start_server, stop_server
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
    monkeypatch.setenv("HWNAS_DATA_DIR", str(tmp_path))
    main(["admin", "user", "alice"])
    main(["admin", "token", "alice"])
    headers = {"Authorization": f"Bearer {capsys.readouterr().out.splitlines()[-1]}"}
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

