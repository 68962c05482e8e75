"""The Ray executor against a local Ray instance started by the test: a real `kit` job
runs as a Ray task, reports progress through the board actor, and a profile job is
cancelled on the cluster; estimator calls fanned out over Ray actors score as the local
estimator does, and a search job hands `run_search` the fan-out only on a Ray worker;
a whole search through the API runs on Ray with its estimator on actors."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from search.estimators import get_estimator
from service.api import create_app
from service.jobs.registry import JobContext
from service.jobs.worker import Worker
from service.schemas import FINAL_STATES
from service.store import LocalArtifacts, Store, make_engine, migrate
from tests.conftest import small_space
from tests.service.conftest import NB201, auth, fast_settings
from tests.service.test_api import make_device
from tests.service.test_jobs import wait_job
from tests.service.test_worker import wait

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_jobs_run_as_ray_tasks(tmp_path: Path, local_ray: None) -> None:
    from service.jobs.ray_executor import RayExecutor

    settings = fast_settings(tmp_path, executor="ray", lease_s=30.0)
    engine = make_engine(settings.db_url)
    migrate(engine)
    store = Store(engine)
    owner = store.create_user("alice").id
    kit = store.submit(owner, "kit", {"space": "nb201", "params": NB201, "format": "onnx",
                                      "precision": "fp32", "archs": 2})
    slow = store.submit(owner, "kit", {"space": "mbv2", "params": {"resolution": 32},
                                       "format": "onnx", "precision": "fp32"})
    worker = Worker(store, LocalArtifacts(settings.artifacts_dir), settings,
                    executor=RayExecutor()).start()
    try:
        done = wait(store, owner, kit.id, FINAL_STATES, timeout=180)
        wait(store, owner, slow.id, {"running"}, timeout=60)
        deadline = time.monotonic() + 120
        while store.get(owner, slow.id).progress == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        store.cancel(owner, slow.id)
        cancelled = wait(store, owner, slow.id, FINAL_STATES, timeout=120)
    finally:
        worker.stop()
    assert done.state == "succeeded", done
    assert done.result["entries"] > 0
    assert store.find_kit(space="nb201", params=NB201, fmt="onnx", precision="fp32")
    assert "models in kit.zip" in done.log_tail
    assert cancelled.state == "cancelled" and 0 < cancelled.progress < 1


class _Staged:
    """An estimator with a per-stage `prepare`, which `fan_out` must leave alone."""

    def prepare(self, space: object, **_: object) -> None:
        return None

    def score(self, archs: list[object]) -> np.ndarray:
        return np.zeros(len(archs))

    def describe(self) -> str:
        return "staged"


@pytest.mark.parametrize("name", ["params", pytest.param("flops", marks=pytest.mark.slow),
                                  pytest.param("zico", marks=pytest.mark.slow)])
def test_fanned_out_scores_equal_local_scores(name: str, local_ray: None) -> None:
    from service.jobs.ray_estimator import RayEstimator

    space = small_space("nb201")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(7)]
    settings = {"seed": 0, "threads": 1} if name == "zico" else {}
    local = get_estimator(name, space=space, **settings)
    remote = RayEstimator(local, chunk=2)
    try:
        assert remote.actors == 2  # one per CPU of the test's Ray
        np.testing.assert_array_equal(remote.score(archs), local.score(archs))
        np.testing.assert_array_equal(remote.score(archs[::-1]), local.score(archs[::-1]))
        assert remote.score([]).shape == (0,)
        assert remote.describe() == local.describe()
    finally:
        remote.close()


def test_search_jobs_fan_out_only_on_ray_workers(local_ray: None) -> None:
    from service.jobs.ray_estimator import RayEstimator, cluster_wrapper, fan_out

    assert cluster_wrapper() is None  # the test process is Ray's driver, not a worker
    assert ray.get(ray.remote(lambda: cluster_wrapper() is fan_out).remote())
    staged = _Staged()
    assert fan_out(staged) is staged
    with pytest.raises(ValueError, match="actors"):
        RayEstimator(staged, actors=0)


def _wrapper_a_search_job_passes(work_dir: str) -> bool:
    """Run the `search` job kind with `run_search` replaced by a spy (in this process
    only); True if it was handed `fan_out` as its estimator wrapper."""
    import search.api
    from service.jobs.kinds.search import run_search_job
    from service.jobs.ray_estimator import fan_out

    seen: dict[str, object] = {}

    def spy(spec: object, out_dir: Path, **options: object) -> None:
        seen.update(options)
        raise LookupError("the spy stops the search here")

    params = {"space": "nb201", "params": NB201, "estimator": "params", "strategy": "random",
              "data": None, "limits": {"evaluations": 8, "minutes": 1}, "seed": 0,
              "cache_dir": work_dir, "resolved_targets": [{
                  "device": {"name": "pc", "backend": "onnxruntime", "resolution": 16},
                  "budget_ms": 5.0, "predictor": None}]}
    ctx = JobContext(job_id=1, params=params, work_dir=Path(work_dir), attempt=1,
                     report=lambda *_: None, stop_requested=lambda: False)
    real, search.api.run_search = search.api.run_search, spy
    try:
        run_search_job(ctx)
    except LookupError:
        pass
    finally:
        search.api.run_search = real
    return seen.get("estimator_wrapper") is fan_out


def test_search_job_fans_out_when_it_runs_as_a_ray_task(tmp_path: Path,
                                                        local_ray: None) -> None:
    assert ray.get(ray.remote(_wrapper_a_search_job_passes).remote(str(tmp_path)))
    assert not _wrapper_a_search_job_passes(str(tmp_path))  # in-process executors



def _scorer_actors() -> set[int]:
    """Pids of this process's descendants titled `ray::_Scorer`: the Ray actors of the
    local Ray this test started (Ray names each actor's process after its class; other
    sessions' Ray instances are not descendants)."""
    children: dict[int, list[int]] = {}
    titles: dict[int, bytes] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            titles[int(entry.name)] = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):  # the process ended meanwhile
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [os.getpid()]
    while todo:
        for pid in children.get(todo.pop(), []):
            todo.append(pid)
            if titles.get(pid, b"").startswith(b"ray::_Scorer"):
                found.add(pid)
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads Linux's /proc")
def test_search_job_end_to_end_on_ray(tmp_path: Path, local_ray: None,
                                      measured: dict[str, Any]) -> None:
    """A real search through the API with `HWNAS_EXECUTOR=ray`: the predictor fit and the
    search run as Ray tasks, the search's estimator calls fan out to `_Scorer` actors."""
    import onnxruntime as ort

    settings = fast_settings(tmp_path, executor="ray", workers=1, lease_s=30.0)
    before = _scorer_actors()  # other tests' actors, if any are still going
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.25):
            seen.update(_scorer_actors() - before)

    with TestClient(create_app(settings)) as client:
        alice = auth(client, "alice")
        device = make_device(client, alice)
        base = f"/v1/devices/{device['id']}"
        assert client.post(f"{base}/measurements", json=measured["doc"],
                           headers=alice).status_code == 201
        fit = client.post(f"{base}/predictor", json={"kind": "lut"}, headers=alice)
        assert wait_job(client, alice, fit.json()["id"])["state"] == "succeeded"
        budget = 2 * max(arch["median_ms"] for arch in measured["doc"]["archs"])
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        created = client.post("/v1/searches", headers=alice, json={
            "space": "nb201", "params": NB201, "estimator": "params", "strategy": "random",
            "targets": [{"device_id": device["id"], "budget_ms": budget}],
            "limits": {"evaluations": 8, "minutes": 5}, "formats": ["onnx"]})
        assert created.status_code == 202, created.text
        try:
            job = wait_job(client, alice, created.json()["id"], timeout=400)
        finally:
            done.set()
            watcher.join()
        assert job["state"] == "succeeded", job
        files = f"/v1/searches/{job['id']}/artifacts"
        sizes = {a["name"]: a["bytes"] for a in client.get(files, headers=alice).json()}
        model = client.get(f"{files}/model.onnx", headers=alice)
        report = client.get(f"{files}/report.json", headers=alice)
    # One actor per CPU of the test's Ray, alive while the search ran; Ray ends them
    # once the job's task lets go of its estimator.
    assert len(seen) == 2, seen
    deadline = time.monotonic() + 60
    while _scorer_actors() & seen and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _scorer_actors() & seen
    assert len(model.content) == sizes["model.onnx"]
    assert len(report.content) == sizes["report.json"]
    assert json.loads(report.content) == job["result"]["report"]
    session = ort.InferenceSession(model.content, providers=["CPUExecutionProvider"])
    (entry,) = session.get_inputs()
    assert entry.shape[1:] == [3, NB201["resolution"], NB201["resolution"]]
    x = np.random.default_rng(0).standard_normal((1, *entry.shape[1:])).astype(np.float32)
    (logits,) = session.run(None, {entry.name: x})
    assert logits.shape == (1, NB201["classes"]) and np.isfinite(logits).all()
