"""Jobs as Ray tasks (`HWNAS_EXECUTOR=ray`, `HWNAS_RAY_ADDRESS`).

The worker (its lease, heartbeat and store access) stays in the service process; only a
job kind's `run` becomes a Ray task, placed by Ray anywhere in the cluster. Progress,
log lines and stop requests travel through one small actor (the *board*) per executor:
the task posts reports to it without waiting, and polls it for a stop flag at most once a
second; the worker's thread drains it while waiting on the task. Job folders are paths
in the shared data folder, which every Ray node must mount (see deploy/README.md).

Ray is imported when the executor is built, never at module import.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from service.jobs.executors import JobFailed, JobStatus, answer, run_to_answer
from service.jobs.registry import JobContext

STOP_POLL_S = 1.0


class _Board:
    """Ray actor: reports per job, and which jobs were asked to stop."""

    def __init__(self) -> None:
        self.reports: dict[int, list[tuple[float | None, str | None, str]]] = {}
        self.stops: set[int] = set()

    def report(self, job_id: int, progress: float | None, message: str | None,
               log: str) -> None:
        self.reports.setdefault(job_id, []).append((progress, message, log))

    def drain(self, job_id: int) -> list[tuple[float | None, str | None, str]]:
        return self.reports.pop(job_id, [])

    def stop(self, job_id: int) -> None:
        self.stops.add(job_id)

    def stopped(self, job_id: int) -> bool:
        return job_id in self.stops


def _task(kind: str, job_id: int, params: dict[str, Any], work_dir: str, attempt: int,
          board: Any) -> tuple[Any, ...]:
    import ray

    last = {"at": 0.0, "stop": False}

    def stop_requested() -> bool:
        now = time.monotonic()
        if not last["stop"] and now - last["at"] >= STOP_POLL_S:
            last["at"], last["stop"] = now, ray.get(board.stopped.remote(job_id))
        return last["stop"]

    def report(progress: float | None, message: str | None, log: str) -> None:
        board.report.remote(job_id, progress, message, log)

    ctx = JobContext(job_id=job_id, params=params, work_dir=Path(work_dir), attempt=attempt,
                     report=report, stop_requested=stop_requested)
    outcome = run_to_answer(kind, ctx)
    ray.get(board.drain.remote(-1))  # reports above are ordered before this call returns
    return outcome


class RayExecutor:
    """Runs each job's `run` as a Ray task on the cluster at `address` (None: local Ray)."""

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: float = 1) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     ignore_reinit_error=True)
        self._ray = ray
        self._board = ray.remote(_Board).options(num_cpus=0).remote()
        self._task = ray.remote(_task).options(num_cpus=num_cpus, max_retries=0)

    def execute(self, kind: str, *, job_id: int, params: dict[str, Any], work_dir: Path,
                attempt: int, status: JobStatus) -> dict[str, Any]:
        ray = self._ray
        ref = self._task.remote(kind, job_id, params, str(work_dir), attempt, self._board)
        stop_sent = False
        while True:
            ready, _ = ray.wait([ref], timeout=0.5)
            if status.stop.is_set() and not stop_sent:
                self._board.stop.remote(job_id)
                stop_sent = True
            if ready:
                break
            self._forward(job_id, status)
        try:
            outcome = ray.get(ref)
        except ray.exceptions.RayError as exc:
            raise JobFailed(f"Ray task failed: {str(exc).splitlines()[0]}") from exc
        finally:
            self._forward(job_id, status)
        return answer(outcome, job_id)

    def _forward(self, job_id: int, status: JobStatus) -> None:
        for progress, message, log in self._ray.get(self._board.drain.remote(job_id)):
            status.report(progress, message, log)

    def close(self) -> None:
        self._ray.kill(self._board)
