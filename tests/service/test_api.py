"""The REST API with TestClient on a SQLite file: resources, isolation, bad input."""

from __future__ import annotations

import copy
import json
from typing import Any

from fastapi.testclient import TestClient

DEVICE = {"name": "pc", "backend": "onnxruntime", "hardware": "AMD EPYC, 2 cores"}
SMALL = ["param=resolution=16", "param=channels=8", "param=cells=1"]


def make_device(client: TestClient, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    response = client.post("/v1/devices", json={**DEVICE, **extra}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_health_metrics_and_openapi(client: TestClient) -> None:
    assert client.get("/v1/health").json()["status"] == "ok"
    metrics = client.get("/v1/metrics").text
    assert 'hwnas_jobs{state="queued"} 0.0' in metrics
    assert "hwnas_request_seconds_bucket" in metrics
    schema = client.get("/v1/openapi.json").json()
    assert schema["components"]["schemas"]["DeviceCreate"]["examples"]
    assert "/v1/searches/{search_id}/artifacts/{name}" in schema["paths"]


def test_tokens_are_required(client: TestClient, alice: dict[str, str]) -> None:
    for headers in ({}, {"Authorization": "Bearer hwnas_nope"}, {"Authorization": "Basic x"}):
        response = client.get("/v1/devices", headers=headers)
        assert response.status_code == 401
        assert "bearer token" in response.json()["detail"]
    assert client.get("/v1/devices", headers=alice).json() == []


def test_devices_and_isolation(client: TestClient, alice: dict[str, str],
                               bob: dict[str, str]) -> None:
    device = make_device(client, alice)
    assert client.get("/v1/devices", headers=alice).json() == [device]
    assert client.get(f"/v1/devices/{device['id']}", headers=alice).json() == device
    for method, path in (("get", ""), ("delete", ""), ("get", "/measurements"),
                         ("get", "/predictor"), ("get", "/kit?space=nb201")):
        response = client.request(method, f"/v1/devices/{device['id']}{path}", headers=bob)
        assert response.status_code == 404, path
        assert response.json()["detail"] == f"device {device['id']} not found"
    conflict = client.post("/v1/devices", json=DEVICE, headers=alice)
    assert conflict.status_code == 409 and "pc" in conflict.json()["detail"]
    assert client.delete(f"/v1/devices/{device['id']}", headers=alice).status_code == 204
    assert client.get(f"/v1/devices/{device['id']}", headers=alice).status_code == 404


def test_bad_device_input_names_the_field(client: TestClient, alice: dict[str, str]) -> None:
    cases = [
        ({**DEVICE, "threads": 0}, "body.threads"),
        ({**DEVICE, "backend": "tensorrt"}, "body.backend"),
        ({**DEVICE, "delegate": "/x.so"}, "body"),
        ({"backend": "tflite", "hardware": "x"}, "body.name"),
    ]
    for body, field in cases:
        response = client.post("/v1/devices", json=body, headers=alice)
        assert response.status_code == 422
        assert response.json()["field"] == field, response.json()
    malformed = client.post("/v1/devices", content=b'{"name": "pc",', headers={
        **alice, "Content-Type": "application/json"})
    assert malformed.status_code == 422 and "JSON" in malformed.json()["detail"]
    assert client.get("/v1/devices/99999999999", headers=alice).status_code == 422


def test_measurement_uploads(client: TestClient, alice: dict[str, str], bob: dict[str, str],
                             measured: dict[str, Any]) -> None:
    device = make_device(client, alice)
    url = f"/v1/devices/{device['id']}/measurements"
    first = client.post(url, json=measured["doc"], headers=alice)
    assert first.status_code == 201, first.text
    count = len(measured["doc"]["cells"]) + len(measured["doc"]["archs"])
    assert first.json()["added"] == count
    again = client.post(url, json=measured["doc"], headers=alice).json()
    assert (again["added"], again["kept"]) == (0, count)
    sets = client.get(url, headers=alice).json()
    assert len(sets) == 1 and sets[0]["complete"] and sets[0]["archs"] == 4
    stored = client.get(f"{url}/{sets[0]['id']}", headers=alice).json()
    assert [m["key"] for m in stored["cells"]] == [m["key"] for m in measured["doc"]["cells"]]
    assert client.post(url, json=measured["doc"], headers=bob).status_code == 404


def test_bad_measurement_uploads(client: TestClient, alice: dict[str, str],
                                 measured: dict[str, Any]) -> None:
    device = make_device(client, alice)
    url = f"/v1/devices/{device['id']}/measurements"

    def broken(change: Any) -> dict[str, Any]:
        doc = copy.deepcopy(measured["doc"])
        change(doc)
        return doc

    cases = {
        "schema_version": broken(lambda d: d.update(schema_version=7)),
        "median_ms": broken(lambda d: d["cells"][0].update(median_ms=-1.0)),
        "threads": broken(lambda d: d["settings"].update(threads=8)),
    }
    for needle, doc in cases.items():
        response = client.post(url, json=doc, headers=alice)
        assert 400 <= response.status_code < 500 and needle in response.json()["detail"], (
            needle, response.json())
    nan = json.dumps(measured["doc"]).replace('"mean_ms": ', '"mean_ms": NaN, "x": ', 1)
    response = client.post(url, content=nan, headers={**alice,
                                                        "Content-Type": "application/json"})
    assert response.status_code == 422
    huge = b"[" + b"0," * (client.app.state.services.settings.max_upload_bytes // 2) + b"0]"
    response = client.post(url, content=huge, headers={**alice,
                                                         "Content-Type": "application/json"})
    assert response.status_code == 413 and "limit" in response.json()["detail"]


def test_kit_request_starts_one_job(client: TestClient, alice: dict[str, str]) -> None:
    device = make_device(client, alice)
    url = f"/v1/devices/{device['id']}/kit?space=nb201&" + "&".join(SMALL)
    first = client.get(url, headers=alice)
    assert first.status_code == 202 and first.headers["Retry-After"]
    job = first.json()["job"]
    assert job["kind"] == "kit" and job["params"]["format"] == "onnx"
    assert client.get(url, headers=alice).json()["job"]["id"] == job["id"]
    bad = client.get(f"/v1/devices/{device['id']}/kit?space=resnet", headers=alice)
    assert bad.status_code == 422 and "resnet" in bad.json()["detail"]
    bad = client.get(f"/v1/devices/{device['id']}/kit?space=nb201&param=depth=3",
                     headers=alice)
    assert bad.status_code == 422 and "depth" in bad.json()["detail"]


def test_searches(client: TestClient, alice: dict[str, str], bob: dict[str, str]) -> None:
    device = make_device(client, alice)
    spec = {"space": "nb201", "params": {"resolution": 16},
            "targets": [{"device_id": device["id"], "budget_ms": 5.0}]}
    created = client.post("/v1/searches", json=spec, headers=alice)
    assert created.status_code == 202, created.text
    search = created.json()
    assert search["state"] == "queued" and search["params"]["params"]["resolution"] == 16
    assert search["params"]["margin_sigmas"] == 1.0  # the default margin is stored with it
    assert client.get("/v1/searches", headers=alice).json()[0]["id"] == search["id"]
    assert client.post("/v1/searches", json=spec, headers=bob).status_code == 404
    base = f"/v1/searches/{search['id']}"
    for path in ("", "/artifacts", "/artifacts/model.onnx"):
        assert client.get(base + path, headers=bob).status_code == 404
    assert client.get(base + "/artifacts", headers=alice).json() == []
    missing = client.get(base + "/artifacts/model.onnx", headers=alice)
    assert missing.status_code == 404 and "model.onnx" in missing.json()["detail"]
    for name in ("%2e%2e", "..%2F..%2Fhwnas.db", "%2E%2E%2Fx", ".hidden", "a%5Cb"):
        response = client.get(f"{base}/artifacts/{name}", headers=alice)
        assert response.status_code in (400, 404) and response.json()["detail"], name
    assert client.post(base + "/cancel", headers=alice).json()["state"] == "cancelled"
    assert client.post(base + "/cancel", headers=alice).status_code == 409
    bad = client.post("/v1/searches", json={**spec, "targets": [
        {"device_id": device["id"], "budget_ms": -1}]}, headers=alice)
    assert bad.status_code == 422 and bad.json()["field"] == "body.targets.0.budget_ms"
    for extra, message in (({"train_minutes": 4, "train_top": 2, "limits": {"minutes": 8}},
                            "leaves no time for the search"),
                           ({"train_minutes": 1, "train_epochs": 2}, "not both"),
                           ({"train_epochs": 0}, "train_epochs"),
                           ({"margin_sigmas": -0.5}, "body.margin_sigmas"),
                           ({"formats": []}, "body.formats"),
                           ({"formats": ["onnx", "pdf"]}, "body.formats.1"),
                           ({"formats": ["onnx", "onnx"]}, "listed more than once: onnx"),
                           ({"formats": ["tflite"]},
                            f"formats: device {device['id']} (onnxruntime fp32) is timed on "
                            "its onnx file; add 'onnx'")):
        bad = client.post("/v1/searches", json={**spec, **extra}, headers=alice)
        assert bad.status_code == 422 and message in bad.text, bad.text
    tflite = make_device(client, alice, name="board", backend="tflite", precision="int8")
    only = client.post("/v1/searches", headers=alice, json={
        **spec, "formats": ["onnx"], "targets": [{"device_id": tflite["id"], "budget_ms": 5}]})
    assert only.status_code == 422 and "add 'tflite-int8'" in only.text, only.text
    both = client.post("/v1/searches", headers=alice, json={
        **spec, "formats": ["onnx", "tflite-int8"], "targets": [
            {"device_id": device["id"], "budget_ms": 5},
            {"device_id": tflite["id"], "budget_ms": 5}]})
    assert both.status_code == 202 and both.json()["params"]["formats"] == ["onnx",
                                                                             "tflite-int8"]
