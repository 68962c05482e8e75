"""The `profile` job: measure a device's kit on the machine that runs the job.

For a device that is the service's own host (or a Ray worker node placed on it). The
profiler runs as a subprocess (`python -m profilers run`): the service's threads cannot
disturb its timing, progress is read from the measurements file it saves after every
chunk, and a cancel is a SIGINT, after which the runner saves what it has. A re-run after
a crash resumes the same file. The finished file is merged into the device's
measurements exactly like a board's upload.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
from typing import Any

from service.jobs.registry import JobCancelled, JobContext, JobEnv, register_job
from service.schemas import KIT_FORMAT
from service.store import ClaimedJob

OUTPUT = "measurements.json"
KIT_FILE = "kit.zip"


def _prepare(env: JobEnv, job: ClaimedJob) -> dict[str, Any]:
    device = env.store.get_device(job.owner_id, job.device_id)
    fmt = KIT_FORMAT[device.backend]
    params = job.params
    cached = env.store.find_kit(space=params["space"], params=params["params"], fmt=fmt,
                                precision=device.precision)
    work = env.artifacts.local_dir(f"jobs/{job.id}")
    if cached is not None and not (work / KIT_FILE).exists():
        with env.artifacts.open(cached) as source, (work / KIT_FILE).open("wb") as target:
            shutil.copyfileobj(source, target)
    return {"backend": device.backend, "threads": device.threads,
            "precision": device.precision, "delegate": device.delegate, "format": fmt}


def _finish(env: JobEnv, job: ClaimedJob, result: dict[str, Any]) -> dict[str, Any]:
    from profilers.formats import load_measurements

    doc = load_measurements(env.artifacts.local_dir(f"jobs/{job.id}") / OUTPUT)
    upload = env.store.add_measurements(job.owner_id, job.device_id, doc)
    return {**result, "measurement_set": upload.set.id, "added": upload.added,
            "improved": upload.improved}


@register_job("profile", prepare=_prepare, finish=_finish)
def profile_device(ctx: JobContext) -> dict[str, Any]:
    """Build (or reuse) the kit, then measure it with the device's settings."""
    from models.kit import make_kit
    from profilers.formats import load_measurements, read_manifest
    from spaces import get_space

    params = ctx.params
    kit = ctx.work_dir / KIT_FILE
    if not kit.exists():
        space = get_space(params["space"], **params["params"])
        make_kit(space, params["format"], kit, archs=params.get("archs", 5),
                 seed=params.get("seed", 0), precision=params["precision"],
                 progress=lambda done, total, _key: ctx.progress(0.3 * done / total, "kit"))
        ctx.check_stop()
    entries = len(read_manifest(kit).entries)
    output = ctx.work_dir / OUTPUT
    argv = [sys.executable, "-m", "profilers", "run", str(kit), "--backend", params["backend"],
            "--threads", str(params["threads"]), "--precision", params["precision"],
            "--chunk", str(params.get("chunk", 16)), "-o", str(output), "--quiet"]
    if params.get("delegate"):
        argv += ["--delegate", params["delegate"]]
    if params.get("runs") is not None:
        argv += ["--runs", str(params["runs"]), "--rounds", str(min(20, params["runs"]))]
    if params.get("budget_s") is not None:
        argv += ["--budget-s", str(params["budget_s"])]
    with subprocess.Popen(argv, stderr=subprocess.PIPE, text=True) as proc:
        while proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.5)
            if ctx.should_stop() and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait()
                raise JobCancelled(f"profile job {ctx.job_id} stopped")
            if output.exists():
                done = load_measurements(output).count()
                ctx.progress(0.3 + 0.7 * done / entries, f"{done}/{entries} measured")
        stderr = proc.stderr.read() if proc.stderr else ""
    if stderr.strip():
        ctx.log(stderr.strip())
    if proc.returncode != 0:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit {proc.returncode}"
        raise RuntimeError(f"profiler failed: {last}")
    doc = load_measurements(output)
    return {"file": OUTPUT, "cells": len(doc.cells), "archs": len(doc.archs)}
