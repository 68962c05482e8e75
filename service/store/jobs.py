"""The job queue in the database: the job state machine and its leases.

States: `queued -> running -> succeeded | failed | cancelled`, and `running -> queued`
when the worker that held the job died (its lease expired). A worker claims a queued job
with a conditional UPDATE (so two workers, even in two processes or on two machines
sharing PostgreSQL, never run the same job), renews the lease with heartbeats that also
carry progress and log lines, and finishes the job only while it still holds the lease.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from service.schemas import FINAL_STATES, JobPublic
from service.store.repository import ConflictError, NotFoundError, Repository, aware
from service.store.tables import Device, Job, utcnow

LOG_LIMIT = 64 * 1024
LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class ClaimedJob:
    """What a worker needs to run a job it has claimed."""

    id: int
    owner_id: int
    kind: str
    device_id: int | None
    params: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class Beat:
    """One heartbeat's news about a running job."""

    job_id: int
    progress: float | None = None
    message: str | None = None
    log: str = ""


class Store(Repository):
    """The whole store: the repository plus jobs (submit, read, cancel for the API; claim,
    beat, finish, requeue for workers)."""

    # API side -----------------------------------------------------------------------

    def submit(self, owner: int, kind: str, params: dict[str, Any], *,
               device_id: int | None = None) -> JobPublic:
        with self.session() as session:
            if device_id is not None:
                device = session.get(Device, device_id)
                if device is None or device.owner_id != owner:
                    raise NotFoundError(f"device {device_id} not found")
            job = Job(owner_id=owner, kind=kind, params=params, device_id=device_id,
                      state="queued", progress=0.0, message="queued", log="", attempts=0,
                      cancel_requested=False, created_at=utcnow())
            session.add(job)
            session.flush()
            return job_public(job)

    def get(self, owner: int, job_id: int, *, kind: str | None = None) -> JobPublic:
        with self.session() as session:
            job = session.get(Job, job_id)
            if job is None or job.owner_id != owner or kind not in (None, job.kind):
                raise NotFoundError(f"{kind or 'job'} {job_id} not found")
            return job_public(job)

    def list(self, owner: int, *, kind: str | None = None, limit: int = 100,
             offset: int = 0) -> list[JobPublic]:
        query = select(Job).where(Job.owner_id == owner)
        if kind is not None:
            query = query.where(Job.kind == kind)
        with self.session() as session:
            rows = session.scalars(query.order_by(Job.id.desc()).limit(limit).offset(offset))
            return [job_public(job) for job in rows]

    def find_active(self, owner: int, kind: str, params: dict[str, Any]) -> JobPublic | None:
        """A queued or running job of `kind` with exactly `params` (to avoid duplicates)."""
        with self.session() as session:
            rows = session.scalars(select(Job).where(
                Job.owner_id == owner, Job.kind == kind, Job.state.in_(("queued", "running"))))
            return next((job_public(job) for job in rows if job.params == params), None)

    def cancel(self, owner: int, job_id: int, *, kind: str | None = None) -> JobPublic:
        """Cancel a queued job now, or ask a running one to stop; a final job is a conflict."""
        with self.session() as session:
            job = session.get(Job, job_id, with_for_update=True)
            if job is None or job.owner_id != owner or kind not in (None, job.kind):
                raise NotFoundError(f"{kind or 'job'} {job_id} not found")
            if job.state in FINAL_STATES:
                raise ConflictError(f"{job.kind} {job_id} is already {job.state}")
            job.cancel_requested = True
            if job.state == "queued":
                job.state, job.message, job.finished_at = "cancelled", "cancelled", utcnow()
            return job_public(job)

    def counts(self) -> dict[str, int]:
        """Number of jobs in each state (every state present, zero included)."""
        with self.session() as session:
            found = dict(session.execute(
                select(Job.state, func.count()).group_by(Job.state)).all())
        return {state: found.get(state, 0)
                for state in ("queued", "running", "succeeded", "failed", "cancelled")}

    # worker side --------------------------------------------------------------------

    def claim(self, worker: str, kinds: Iterable[str]) -> ClaimedJob | None:
        """Take the oldest queued job of one of `kinds`, or None if there is none."""
        kinds = list(kinds)
        for _ in range(5):
            with self.session() as session:
                candidate = session.scalar(
                    select(Job.id).where(Job.state == "queued", Job.kind.in_(kinds))
                    .order_by(Job.id).limit(1))
                if candidate is None:
                    return None
                now = utcnow()
                taken = session.execute(
                    update(Job).where(Job.id == candidate, Job.state == "queued").values(
                        state="running", lease_owner=worker, heartbeat_at=now,
                        started_at=func.coalesce(Job.started_at, now),
                        attempts=Job.attempts + 1, message="running")).rowcount
                if taken:
                    job = session.get(Job, candidate)
                    return ClaimedJob(job.id, job.owner_id, job.kind, job.device_id,
                                      dict(job.params), job.attempts)
        return None

    def beat(self, worker: str, beats: Iterable[Beat]) -> tuple[set[int], set[int]]:
        """Renew `worker`'s leases, saving progress and logs.

        Returns:
            (ids whose cancellation was requested, ids this worker no longer holds).
        """
        cancel, lost = set(), set()
        with self.session() as session:
            for beat in beats:
                job = session.get(Job, beat.job_id)
                if job is None or job.state != "running" or job.lease_owner != worker:
                    lost.add(beat.job_id)
                    continue
                job.heartbeat_at = utcnow()
                if beat.progress is not None:
                    job.progress = min(1.0, max(0.0, beat.progress))
                if beat.message is not None:
                    job.message = beat.message[:512]
                if beat.log:
                    job.log = (job.log + beat.log)[-LOG_LIMIT:]
                if job.cancel_requested:
                    cancel.add(job.id)
        return cancel, lost

    def finish(self, worker: str, job_id: int, state: str, *, result: dict[str, Any] | None = None,
               error: str | None = None, log: str = "") -> bool:
        """Put a job held by `worker` in a final state; False if the lease was lost."""
        with self.session() as session:
            job = session.get(Job, job_id, with_for_update=True)
            if job is None or job.state != "running" or job.lease_owner != worker:
                return False
            job.state, job.result, job.error = state, result, error
            job.message = {"succeeded": "done", "cancelled": "cancelled"}.get(
                state, (error or "failed").splitlines()[0][:512])
            if state == "succeeded":
                job.progress = 1.0
            job.log = (job.log + log)[-LOG_LIMIT:]
            job.finished_at, job.lease_owner = utcnow(), None
            return True

    def release(self, worker: str, job_id: int) -> None:
        """Hand a job back to the queue (this worker is shutting down)."""
        with self.session() as session:
            session.execute(update(Job).where(
                Job.id == job_id, Job.state == "running", Job.lease_owner == worker).values(
                state="queued", lease_owner=None, message="re-queued: worker stopped"))

    def requeue_orphans(self, *, lease_s: float, max_attempts: int) -> list[int]:
        """Re-queue running jobs whose lease expired (their worker died); ids touched.

        A job that already used `max_attempts` attempts fails instead, so a job that
        kills its worker every time cannot loop forever.
        """
        cutoff = utcnow() - timedelta(seconds=lease_s)
        touched = []
        with self.session() as session:
            rows = session.scalars(select(Job).where(Job.state == "running"))
            for job in rows:
                if aware(job.heartbeat_at) is not None and aware(job.heartbeat_at) >= cutoff:
                    continue
                touched.append(job.id)
                job.lease_owner = None
                if job.cancel_requested:
                    job.state, job.message, job.finished_at = "cancelled", "cancelled", utcnow()
                elif job.attempts >= max_attempts:
                    job.state, job.finished_at = "failed", utcnow()
                    job.error = job.message = (
                        f"worker lost {job.attempts} times (limit {max_attempts})")
                else:
                    job.state = "queued"
                    job.message = f"re-queued after attempt {job.attempts}: worker lost"
        return touched


def job_public(job: Job) -> JobPublic:
    """The snapshot of a job row, with its ETA estimated from the progress so far."""
    started = aware(job.started_at)
    eta = None
    if job.state == "running" and started is not None and 0 < job.progress < 1:
        elapsed = (utcnow() - started).total_seconds()
        eta = round(elapsed * (1 - job.progress) / job.progress, 1)
    return JobPublic(
        id=job.id, kind=job.kind, state=job.state, device_id=job.device_id,
        params=job.params, progress=job.progress, message=job.message, result=job.result,
        error=job.error, attempts=job.attempts, cancel_requested=job.cancel_requested,
        created_at=aware(job.created_at), started_at=started,
        finished_at=aware(job.finished_at), eta_s=eta,
        log_tail="\n".join(job.log.splitlines()[-LOG_TAIL_LINES:]))
