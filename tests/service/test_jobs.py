"""The real job kinds through the API with a running worker: a kit is built once and
downloaded, a device is profiled here (onnxruntime), a predictor is fitted on it."""

from __future__ import annotations

import io
import time
import zipfile
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api import create_app
from service.config import Settings
from service.jobs.registry import list_job_kinds
from tests.service.conftest import NB201, auth
from tests.service.test_api import DEVICE, SMALL


def wait_job(client: TestClient, headers: dict[str, str], job_id: int,
             timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_builtin_kinds_are_registered() -> None:
    assert {"kit", "profile", "predictor", "search"} <= set(list_job_kinds())


@pytest.mark.slow
def test_kit_profile_predictor(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        alice = auth(client, "alice")
        device = client.post("/v1/devices", json=DEVICE, headers=alice).json()
        base = f"/v1/devices/{device['id']}"
        pending = client.get(f"{base}/kit?space=nb201&" + "&".join(SMALL), headers=alice)
        assert pending.status_code == 202
        job = wait_job(client, alice, pending.json()["job"]["id"])
        assert job["state"] == "succeeded", job
        kit = client.get(f"{base}/kit?space=nb201&" + "&".join(SMALL), headers=alice)
        assert kit.status_code == 200 and kit.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(kit.content)) as archive:
            assert "manifest.json" in archive.namelist()
        assert job["result"]["entries"] == len(archive.namelist()) - 1

        profile = client.post(f"{base}/profile", json={
            "space": "nb201", "params": NB201, "archs": 5, "runs": 5}, headers=alice)
        assert profile.status_code == 202
        job = wait_job(client, alice, profile.json()["id"])
        assert job["state"] == "succeeded", job
        sets = client.get(f"{base}/measurements", headers=alice).json()
        assert sets[0]["complete"] and sets[0]["archs"] == 5

        fit = client.post(f"{base}/predictor", json={"kind": "lut"}, headers=alice)
        job = wait_job(client, alice, fit.json()["id"])
        assert job["state"] == "succeeded", job
        report = client.get(f"{base}/predictor", headers=alice).json()["report"]
        assert report["held_out"] and report["accuracy"]["archs"] >= 2
        assert len(report["points"]) == report["accuracy"]["archs"]
        assert client.get(f"{base}/predictor/file", headers=alice).json()["schema_version"]
        budget = 2 * max(m["median_ms"] for m in client.get(
            f"{base}/measurements/{sets[0]['id']}", headers=alice).json()["archs"])
        created = client.post("/v1/searches", headers=alice, json={
            "space": "nb201", "params": NB201, "estimator": "params", "strategy": "random",
            "targets": [{"device_id": device["id"], "budget_ms": budget}],
            "limits": {"evaluations": 8, "minutes": 5}, "train_epochs": 1})
        assert created.status_code == 202, created.text
        job = wait_job(client, alice, created.json()["id"], timeout=300)
        assert job["state"] == "succeeded", job
        files = {a["name"]: a["bytes"] for a in client.get(
            f"/v1/searches/{job['id']}/artifacts", headers=alice).json()}
        # The trained deliverable; the training checkpoints are not listed.
        assert {"model.onnx", "report.json", "model_card.md", "train.json"} <= set(files)
        assert not any("/" in name for name in files)
        assert job["result"]["report"]["trained"]
        model = client.get(f"/v1/searches/{job['id']}/artifacts/model.onnx", headers=alice)
        assert model.status_code == 200 and len(model.content) == files["model.onnx"]
        metrics = client.get("/v1/metrics").text
        assert 'hwnas_jobs{state="succeeded"} 4.0' in metrics
