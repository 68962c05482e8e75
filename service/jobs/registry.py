"""Job kinds: what a background job does, registered by name with :func:`register_job`.

A kind is three functions, so the same job runs in this process or as a Ray task:

- `prepare(env, job) -> dict` runs in the service (it may read the store) and returns
  the inputs `run` needs beyond the job's parameters (e.g. a device's measurements file
  written into the job's folder);
- `run(ctx) -> dict` does the work. It sees only its `JobContext` (parameters, a work
  folder, progress and log callbacks, a stop flag), never the database, so it can run
  on another machine;
- `finish(env, job, result) -> dict` runs in the service again and records the result
  in the store (a kit in the kit cache, measurements on the device...).

A job that is re-run after its worker died gets the same work folder: kinds resume from
what is there (the profiler's partial measurements, the search's checkpoint).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.store import ArtifactStore, ClaimedJob, Store

# Modules whose import registers the built-in job kinds (none imports torch at import).
BUILTIN_JOBS = (
    "service.jobs.kinds.kit",
    "service.jobs.kinds.profile",
    "service.jobs.kinds.predictor",
    "service.jobs.kinds.search",
)


class JobCancelled(Exception):
    """Raised inside a job when it was asked to stop (cancel or shutdown)."""


@dataclass
class JobContext:
    """What a running job sees.

    Attributes:
        job_id: The job's id.
        params: The job's parameters merged with what `prepare` returned.
        work_dir: The job's own folder (kept across restarts, so the job can resume).
        attempt: 1 on the first run, 2 after one worker loss, ...
    """

    job_id: int
    params: dict[str, Any]
    work_dir: Path
    attempt: int
    report: Callable[[float | None, str | None, str], None] = field(repr=False)
    stop_requested: Callable[[], bool] = field(repr=False)

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress in 0..1 and an optional one-line status."""
        self.report(fraction, message, "")

    def log(self, line: str) -> None:
        """Append one line to the job's log."""
        self.report(None, None, line.rstrip("\n") + "\n")

    def should_stop(self) -> bool:
        """True once the job is cancelled or its worker shuts down: stop soon, cleanly."""
        return self.stop_requested()

    def check_stop(self) -> None:
        """Raise :class:`JobCancelled` if the job should stop."""
        if self.stop_requested():
            raise JobCancelled(f"job {self.job_id} stopped")


@dataclass(frozen=True)
class JobEnv:
    """What `prepare` and `finish` get: the store and the artifacts."""

    store: Store
    artifacts: ArtifactStore


Prepare = Callable[[JobEnv, ClaimedJob], dict[str, Any]]
Run = Callable[[JobContext], dict[str, Any]]
Finish = Callable[[JobEnv, ClaimedJob, dict[str, Any]], dict[str, Any]]


def _no_prepare(_env: JobEnv, _job: ClaimedJob) -> dict[str, Any]:
    return {}


def _keep_result(_env: JobEnv, _job: ClaimedJob, result: dict[str, Any]) -> dict[str, Any]:
    return result


@dataclass(frozen=True)
class JobKind:
    """A registered job kind (see the module docstring)."""

    name: str
    run: Run
    prepare: Prepare = _no_prepare
    finish: Finish = _keep_result


_KINDS: dict[str, JobKind] = {}


def register_job(name: str, *, prepare: Prepare | None = None, finish: Finish | None = None
                 ) -> Callable[[Run], Run]:
    """Decorator: register the decorated `run` function as the job kind `name`.

    Raises:
        ValueError: `name` is registered twice.
    """

    def wrap(run: Run) -> Run:
        if name in _KINDS:
            raise ValueError(f"job kind {name!r} is registered twice")
        _KINDS[name] = JobKind(name, run, prepare or _no_prepare, finish or _keep_result)
        return run

    return wrap


def _registry() -> dict[str, JobKind]:
    for module in BUILTIN_JOBS:
        importlib.import_module(module)
    return _KINDS


def get_job_kind(name: str) -> JobKind:
    """The job kind registered as `name`.

    Raises:
        KeyError: No such kind (the message lists the known ones).
    """
    kinds = _registry()
    if name not in kinds:
        raise KeyError(f"unknown job kind {name!r} (known: {', '.join(sorted(kinds))})")
    return kinds[name]


def list_job_kinds() -> list[str]:
    """Names of the registered job kinds, sorted."""
    return sorted(_registry())
