"""Where a job's `run` executes: in a child process (the default), a thread, or a Ray task.

Both executors are driven the same way by :class:`service.jobs.worker.Worker`: one of its
threads calls `execute(...)`, which returns `run`'s result or raises what `run` raised.
Progress and log lines travel through a :class:`JobStatus`, which the worker's heartbeat
drains into the store; the status's stop flag reaches the job as `ctx.should_stop()`.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from service.jobs.registry import JobCancelled, JobContext, get_job_kind


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


class ThreadExecutor:
    """Runs the job in the calling thread (the worker's bounded pool bounds concurrency).

    For light jobs and tests: a CPU-heavy job here slows the API down (the GIL)."""

    name = "thread"

    def execute(self, kind: str, *, job_id: int, params: dict[str, Any], work_dir: Path,
                attempt: int, status: JobStatus) -> dict[str, Any]:
        ctx = JobContext(job_id=job_id, params=params, work_dir=work_dir, attempt=attempt,
                         report=status.report, stop_requested=status.stop.is_set)
        return get_job_kind(kind).run(ctx)

    def close(self) -> None:
        return None


class ProcessExecutor:
    """Runs each job in a child process (spawned), so CPU-heavy jobs (torch export,
    training, the profiler) never hold the API's interpreter lock.

    Progress and log lines come back over a pipe; a stop request sets an event the child
    polls through `ctx.should_stop()`, and a child that does not stop within
    `grace_s` is terminated. A child that dies without an answer fails the job.
    """

    name = "inprocess"

    def __init__(self, grace_s: float = 30.0) -> None:
        self.grace_s = grace_s
        self._context = multiprocessing.get_context("spawn")

    def execute(self, kind: str, *, job_id: int, params: dict[str, Any], work_dir: Path,
                attempt: int, status: JobStatus) -> dict[str, Any]:
        parent, child = self._context.Pipe(duplex=False)
        stop = self._context.Event()
        process = self._context.Process(
            target=_child_main, args=(kind, job_id, params, str(work_dir), attempt, child, stop),
            name=f"hwnas-job-{job_id}", daemon=True)
        process.start()
        child.close()
        stop_since: float | None = None
        try:
            while True:
                if parent.poll(0.2):
                    try:
                        message = parent.recv()
                    except EOFError:
                        break
                    if message[0] == "report":
                        status.report(*message[1:])
                        continue
                    return answer(message, job_id)
                if not process.is_alive() and not parent.poll(0):
                    break
                if status.stop.is_set():
                    stop.set()
                    stop_since = stop_since or time.monotonic()
                    if time.monotonic() - stop_since > self.grace_s:
                        process.terminate()
                        raise JobCancelled(f"job {job_id} terminated after {self.grace_s} s")
            process.join(5)
            raise RuntimeError(f"job process died (exit code {process.exitcode})")
        finally:
            parent.close()
            if process.is_alive():
                process.terminate()
            process.join(5)

    def close(self) -> None:
        return None


def answer(message: tuple[Any, ...], job_id: int) -> dict[str, Any]:
    if message[0] == "done":
        return message[1]
    if message[0] == "cancelled":
        raise JobCancelled(f"job {job_id} stopped")
    _, type_name, text, trace = message
    raise JobFailed(f"{type_name}: {text}", trace)


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this child when its parent dies (kill -9 included),
    so a crashed server leaves no job running behind the re-queued copy."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class JobFailed(RuntimeError):
    """A job's `run` raised in a child process or on a Ray worker: its type and message."""

    def __init__(self, message: str, trace: str = "") -> None:
        super().__init__(message)
        self.trace = trace


def _child_main(kind: str, job_id: int, params: dict[str, Any], work_dir: str, attempt: int,
                conn: Connection, stop: Any) -> None:
    _die_with_parent()

    def report(progress: float | None, message: str | None, log: str) -> None:
        conn.send(("report", progress, message, log))

    ctx = JobContext(job_id=job_id, params=params, work_dir=Path(work_dir), attempt=attempt,
                     report=report, stop_requested=stop.is_set)
    try:
        conn.send(run_to_answer(kind, ctx))
    finally:
        conn.close()


def run_to_answer(kind: str, ctx: JobContext) -> tuple[Any, ...]:
    """Run a job kind and turn how it ended into a picklable answer for the worker."""
    try:
        return ("done", get_job_kind(kind).run(ctx))
    except JobCancelled:
        return ("cancelled",)
    except Exception as exc:  # everything goes back to the worker, which fails the job
        return ("error", type(exc).__name__, str(exc), traceback.format_exc())
