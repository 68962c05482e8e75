"""Where a job's `run` executes: in a thread of this process, or as a Ray task.

Both executors are driven the same way by :class:`service.jobs.worker.Worker`: one of its
threads calls `execute(...)`, which returns `run`'s result or raises what `run` raised.
Progress and log lines travel through a :class:`JobStatus`, which the worker's heartbeat
drains into the store; the status's stop flag reaches the job as `ctx.should_stop()`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

from service.jobs.registry import JobContext, get_job_kind


class JobStatus:
    """Thread-safe mailbox between a running job and the worker's heartbeat."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._progress: float | None = None
        self._message: str | None = None
        self._log: list[str] = []
        self.stop = threading.Event()
        self.shutdown = False

    def report(self, progress: float | None, message: str | None, log: str) -> None:
        """Record progress (None: unchanged), a status line (None: unchanged), log text."""
        with self._lock:
            if progress is not None:
                self._progress = float(progress)
            if message is not None:
                self._message = message
            if log:
                self._log.append(log)

    def drain(self) -> tuple[float | None, str | None, str]:
        """What was reported since the last drain: (progress, message, log text)."""
        with self._lock:
            out = (self._progress, self._message, "".join(self._log))
            self._progress, self._message, self._log = None, None, []
        return out


class Executor(Protocol):
    """Runs one job kind's `run` somewhere and waits for it."""

    name: str

    def execute(self, kind: str, *, job_id: int, params: dict[str, Any], work_dir: Path,
                attempt: int, status: JobStatus) -> dict[str, Any]:
        """Run job kind `kind` to completion and return its result."""
        ...

    def close(self) -> None:
        """Release what the executor holds (a Ray connection)."""
        ...


class InProcessExecutor:
    """Runs the job in the calling thread (the worker's bounded pool bounds concurrency)."""

    name = "inprocess"

    def execute(self, kind: str, *, job_id: int, params: dict[str, Any], work_dir: Path,
                attempt: int, status: JobStatus) -> dict[str, Any]:
        ctx = JobContext(job_id=job_id, params=params, work_dir=work_dir, attempt=attempt,
                         report=status.report, stop_requested=status.stop.is_set)
        return get_job_kind(kind).run(ctx)

    def close(self) -> None:
        return None
