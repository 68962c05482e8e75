"""The job worker: state transitions, failures, cancel, and recovery after a lost worker.

The `test-steps` kind is registered here only: it counts steps with a checkpoint file in
its work folder, so a re-run shows whether it resumed, and it honours `should_stop`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from service.config import Settings
from service.jobs.executors import ThreadExecutor
from service.jobs.registry import JobContext, list_job_kinds, register_job
from service.jobs.worker import Worker
from service.schemas import FINAL_STATES, JobPublic
from service.store import LocalArtifacts, Store, make_engine, migrate
from tests.service.conftest import fast_settings

KIND = "test-steps"


def steps(ctx: JobContext) -> dict[str, Any]:
    checkpoint = ctx.work_dir / "step"
    start = int(checkpoint.read_text()) if checkpoint.exists() else 0
    total = ctx.params["steps"]
    for step in range(start, total):
        ctx.check_stop()
        if ctx.params.get("fail_at") == step:
            raise ValueError(f"boom at step {step}")
        time.sleep(ctx.params.get("step_s", 0.01))
        checkpoint.write_text(str(step + 1))
        ctx.progress((step + 1) / total, f"step {step + 1}")
    ctx.log(f"attempt {ctx.attempt} resumed at {start}")
    return {"resumed_at": start, "attempt": ctx.attempt}


@pytest.fixture(scope="module", autouse=True)
def _test_kind() -> None:
    if KIND not in list_job_kinds():
        register_job(KIND)(steps)


@pytest.fixture
def env(tmp_path: Path) -> tuple[Store, LocalArtifacts, Settings, int]:
    settings = fast_settings(tmp_path)
    engine = make_engine(settings.db_url)
    migrate(engine)
    store = Store(engine)
    return store, LocalArtifacts(settings.artifacts_dir), settings, store.create_user("a").id


def wait(store: Store, owner: int, job_id: int, states: set[str], timeout: float = 20
         ) -> JobPublic:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = store.get(owner, job_id)
        if job.state in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job.state}, wanted {states}")


def test_jobs_succeed_and_fail(env: tuple[Store, LocalArtifacts, Settings, int]) -> None:
    store, artifacts, settings, owner = env
    good = store.submit(owner, KIND, {"steps": 5})
    bad = store.submit(owner, KIND, {"steps": 5, "fail_at": 2})
    worker = Worker(store, artifacts, settings, executor=ThreadExecutor()).start()
    try:
        done = wait(store, owner, good.id, FINAL_STATES)
        failed = wait(store, owner, bad.id, FINAL_STATES)
    finally:
        worker.stop()
    assert (done.state, done.progress, done.result) == ("succeeded", 1.0,
                                                       {"resumed_at": 0, "attempt": 1})
    assert "attempt 1 resumed at 0" in done.log_tail
    assert failed.state == "failed" and failed.error == "ValueError: boom at step 2"
    assert "Traceback" in failed.log_tail and failed.progress == pytest.approx(0.4)


def test_cancel_a_running_job(env: tuple[Store, LocalArtifacts, Settings, int]) -> None:
    store, artifacts, settings, owner = env
    job = store.submit(owner, KIND, {"steps": 1000, "step_s": 0.02})
    worker = Worker(store, artifacts, settings, executor=ThreadExecutor()).start()
    try:
        wait(store, owner, job.id, {"running"})
        store.cancel(owner, job.id)
        cancelled = wait(store, owner, job.id, FINAL_STATES)
    finally:
        worker.stop()
    assert cancelled.state == "cancelled" and 0 < cancelled.progress < 1


def test_a_dead_workers_job_is_requeued_and_resumes(
        env: tuple[Store, LocalArtifacts, Settings, int]) -> None:
    store, artifacts, settings, owner = env
    job = store.submit(owner, KIND, {"steps": 10})
    (artifacts.local_dir(f"jobs/{job.id}") / "step").write_text("6")  # its checkpoint
    assert store.claim("worker-that-died", [KIND]).id == job.id
    worker = Worker(store, artifacts, settings, executor=ThreadExecutor()).start()
    try:
        done = wait(store, owner, job.id, FINAL_STATES)
    finally:
        worker.stop()
    assert done.state == "succeeded" and done.attempts == 2
    assert done.result == {"resumed_at": 6, "attempt": 2}


def test_a_stopped_worker_hands_its_jobs_back(
        env: tuple[Store, LocalArtifacts, Settings, int]) -> None:
    store, artifacts, settings, owner = env
    job = store.submit(owner, KIND, {"steps": 200, "step_s": 0.02})
    first = Worker(store, artifacts, settings, executor=ThreadExecutor()).start()
    wait(store, owner, job.id, {"running"})
    time.sleep(0.3)
    first.stop()
    assert store.get(owner, job.id).state == "queued"
    second = Worker(store, artifacts, settings, executor=ThreadExecutor()).start()
    try:
        done = wait(store, owner, job.id, FINAL_STATES)
    finally:
        second.stop()
    assert done.state == "succeeded" and done.result["resumed_at"] > 0


def test_an_unknown_kind_fails(env: tuple[Store, LocalArtifacts, Settings, int]) -> None:
    store, artifacts, settings, owner = env
    job = store.submit(owner, "no-such-kind", {})
    worker = Worker(store, artifacts, settings, executor=ThreadExecutor(),
                    kinds=[KIND, "no-such-kind"]).start()
    try:
        failed = wait(store, owner, job.id, FINAL_STATES)
    finally:
        worker.stop()
    assert failed.state == "failed" and "unknown job kind 'no-such-kind'" in failed.error
