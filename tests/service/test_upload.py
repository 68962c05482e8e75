"""Board upload: `python -m profilers run ... --upload URL --token T --device-id ID`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from profilers.upload import UploadError, upload_measurements
from service.testing import free_port, start_server, stop_server
from tests.service.conftest import cli_user
from tests.service.test_api import DEVICE


def test_unreachable_service_keeps_the_file(tmp_path: Path,
                                            measured: dict[str, Any]) -> None:
    path = tmp_path / "m.json"
    shutil.copy(measured["path"], path)
    before = path.read_bytes()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    waits: list[float] = []
    with pytest.raises(UploadError, match="is kept"):
        upload_measurements(path, url=f"http://127.0.0.1:{port}", token="t", device=1,
                            retries=3, backoff_s=0.5, sleep=waits.append)
    assert waits == [0.5, 1.0, 2.0] and path.read_bytes() == before


@pytest.mark.slow
def test_runner_uploads_to_a_live_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str],
                                         measured: dict[str, Any]) -> None:
    headers = cli_user(tmp_path / "data", monkeypatch, capsys)
    token = headers["Authorization"].removeprefix("Bearer ")
    port = free_port()
    server = start_server(tmp_path / "data", port)
    try:
        url = f"http://127.0.0.1:{port}"
        device = httpx.post(f"{url}/v1/devices", json=DEVICE, headers=headers).json()
        output = tmp_path / "m.json"
        shutil.copy(measured["path"], output)  # a finished run: the runner resumes, uploads
        argv = [sys.executable, "-m", "profilers", "run", str(measured["kit"]), "--backend",
                "onnxruntime", "--runs", "5", "--rounds", "2", "-o", str(output), "--upload",
                url, "--token", token, "--device-id", str(device["id"])]
        done = subprocess.run(argv, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "uploaded" in done.stderr and "added" in done.stderr
        sets = httpx.get(f"{url}/v1/devices/{device['id']}/measurements",
                         headers=headers).json()
        assert sets[0]["complete"] and sets[0]["archs"] == 4
        refused = subprocess.run([*argv[:-2], "--device-id", "999"], capture_output=True,
                                 text=True)
        assert refused.returncode == 2 and "HTTP 404: device 999 not found" in refused.stderr
        assert output.exists()
    finally:
        stop_server(server)
