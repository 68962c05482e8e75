"""The Ray executor against a local Ray instance started by the test: a real `kit` job
runs as a Ray task, reports progress through the board actor, and a profile job is
cancelled on the cluster."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.jobs.worker import Worker
from service.schemas import FINAL_STATES
from service.store import LocalArtifacts, Store, make_engine, migrate
from tests.service.conftest import NB201, fast_settings
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
