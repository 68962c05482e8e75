"""The job worker: claims queued jobs, runs them on an executor, keeps their leases alive.

One `Worker` per process (the API process in the embedded default, or a separate
`hwnas serve --worker-only`). It holds at most `settings.workers` jobs at once. A
dispatcher thread claims jobs while there is room; a heartbeat thread renews the leases
of the jobs it holds (saving their progress and log lines), passes cancel requests on,
and re-queues jobs whose lease expired because the worker that held them died. A job is
therefore never lost and never left `running` forever: after a crash it runs again, in
the same work folder, so it resumes from its checkpoint.

On a clean stop, running jobs are asked to stop and handed back to the queue (not
cancelled), so the next start picks them up at once.
"""

from __future__ import annotations

import logging
import threading
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from service.config import Settings
from service.jobs.executors import (
    Executor,
    JobFailed,
    JobStatus,
    ProcessExecutor,
    ThreadExecutor,
)
from service.jobs.registry import JobCancelled, JobEnv, get_job_kind, list_job_kinds
from service.store import ArtifactStore, Beat, ClaimedJob, Store

log = logging.getLogger("hwnas.worker")


def job_dir_name(job_id: int) -> str:
    """The artifact folder of a job's files."""
    return f"jobs/{job_id}"


def make_executor(settings: Settings) -> Executor:
    """The executor `settings.executor` names."""
    if settings.executor == "ray":
        from service.jobs.ray_executor import RayExecutor

        return RayExecutor(address=settings.ray_address or None)
    if settings.executor == "thread":
        return ThreadExecutor()
    return ProcessExecutor()


class Worker:
    """Runs jobs from the store. Start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(self, store: Store, artifacts: ArtifactStore, settings: Settings, *,
                 executor: Executor | None = None, kinds: list[str] | None = None) -> None:
        self.store, self.artifacts, self.settings = store, artifacts, settings
        self.executor = executor if executor is not None else make_executor(settings)
        self.kinds = kinds if kinds is not None else list_job_kinds()
        self.id = f"worker-{uuid.uuid4().hex[:12]}"
        self._running: dict[int, JobStatus] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max(1, settings.workers), thread_name_prefix="hwnas-job")
        self._threads: list[threading.Thread] = []

    def start(self) -> Worker:
        """Re-queue orphans left by a dead worker, then start claiming jobs."""
        self._requeue()
        for target in (self._dispatch_loop, self._heartbeat_loop):
            thread = threading.Thread(target=target, name=f"hwnas-{target.__name__}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Ask running jobs to stop, hand them back to the queue, and wait for the threads."""
        self._stopping.set()
        with self._lock:
            for status in self._running.values():
                status.shutdown = True
                status.stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)
        for job_id in self.running():  # claimed, but their future was cancelled unstarted
            self.store.release(self.id, job_id)
        self.executor.close()

    def running(self) -> list[int]:
        """Ids of the jobs this worker runs now."""
        with self._lock:
            return sorted(self._running)

    # loops ---------------------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while not self._stopping.is_set():
            claimed = None
            if len(self.running()) < self.settings.workers:
                try:
                    claimed = self.store.claim(self.id, self.kinds)
                except Exception:  # a database hiccup must not kill the worker
                    log.exception("claiming a job failed")
            if claimed is None:
                self._stopping.wait(self.settings.poll_s)
                continue
            status = JobStatus()
            with self._lock:
                self._running[claimed.id] = status
            self._pool.submit(self._execute, claimed, status)

    def _heartbeat_loop(self) -> None:
        while not self._stopping.wait(self.settings.heartbeat_s):
            try:
                self._beat()
                self._requeue()
            except Exception:
                log.exception("heartbeat failed")

    def _beat(self) -> None:
        with self._lock:
            statuses = dict(self._running)
        beats = [Beat(job_id, *status.drain()) for job_id, status in statuses.items()]
        if not beats:
            return
        cancel, lost = self.store.beat(self.id, beats)
        for job_id in cancel | lost:
            statuses[job_id].stop.set()

    def _requeue(self) -> None:
        touched = self.store.requeue_orphans(lease_s=self.settings.lease_s,
                                             max_attempts=self.settings.max_attempts)
        if touched:
            log.warning("re-queued orphaned jobs %s", touched)

    # one job -------------------------------------------------------------------------

    def _execute(self, job: ClaimedJob, status: JobStatus) -> None:
        state, result, error = "failed", None, None
        try:
            kind = get_job_kind(job.kind)
            env = JobEnv(self.store, self.artifacts)
            work_dir = self.artifacts.local_dir(job_dir_name(job.id))
            params = {**job.params, **kind.prepare(env, job)}
            output = self.executor.execute(job.kind, job_id=job.id, params=params,
                                           work_dir=Path(work_dir), attempt=job.attempts,
                                           status=status)
            if status.stop.is_set() and status.shutdown:
                raise JobCancelled("worker stopped")
            result, state = kind.finish(env, job, output), "succeeded"
        except JobCancelled:
            state = "queued" if status.shutdown else "cancelled"
        except Exception as exc:  # a failing job fails; the worker goes on
            if status.shutdown:
                state = "queued"
            else:
                error = str(exc) if isinstance(exc, JobFailed) else f"{type(exc).__name__}: {exc}"
                trace = exc.trace if isinstance(exc, JobFailed) else traceback.format_exc()
                status.report(None, None, trace)
        finally:
            self._settle(job, status, state, result, error)

    def _settle(self, job: ClaimedJob, status: JobStatus, state: str, result: dict | None,
                error: str | None) -> None:
        try:
            progress, message, log_text = status.drain()
            if progress is not None or message is not None:
                self.store.beat(self.id, [Beat(job.id, progress, message)])
            if state == "queued":
                self.store.beat(self.id, [Beat(job.id, log=log_text)])
                self.store.release(self.id, job.id)
            else:
                self.store.finish(self.id, job.id, state, result=result, error=error,
                                  log=log_text)
        except Exception:
            log.exception("recording the end of job %s failed", job.id)
        finally:
            with self._lock:
                self._running.pop(job.id, None)
