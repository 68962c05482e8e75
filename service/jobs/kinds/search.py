"""The `search` job: `search.api.run_search` for a `SearchCreate` request.

`prepare` resolves each target device to a `profilers.device.DeviceProfile` and its
newest predictor's file; `run` builds `search.api.SearchSpec` from those and the request
(space, estimator, strategy, data, evaluations, seed, training, formats) with the job's
folder as the output folder. `run_search` writes the requested files (by default
`model.onnx`, `model.tflite`, `model-int8.tflite`) and `report.json` there (trained,
with `model_card.md`, when a training budget is set) and resumes from its checkpoint in
that folder, so a search whose worker died continues where it stopped. Progress
messages (the current best) become the job's status line.

`limits.minutes` is enforced here: past it the search is stopped at its next batch
(its checkpoint kept) and the job fails saying so.
"""

from __future__ import annotations

import re
import time
from typing import Any

from service.jobs.registry import JobCancelled, JobContext, JobEnv, register_job
from service.store import ClaimedJob, ConflictError, NotFoundError


def _profile_name(device_id: int, name: str) -> str:
    return f"{device_id}-{re.sub(r'[^A-Za-z0-9._-]+', '-', name)}"[:100]


def _prepare(env: JobEnv, job: ClaimedJob) -> dict[str, Any]:
    resolution = job.params["params"].get("resolution", 224)
    targets = []
    for target in job.params["targets"]:
        device = env.store.get_device(job.owner_id, target["device_id"])
        try:
            _, artifact = env.store.latest_predictor(job.owner_id, device.id)
        except NotFoundError as exc:
            raise ConflictError(f"targets: {exc}") from exc
        profile = {"name": _profile_name(device.id, device.name), "backend": device.backend,
                   "hardware": device.hardware, "threads": device.threads,
                   "precision": device.precision, "delegate": device.delegate,
                   "resolution": resolution}
        targets.append({"device": profile, "budget_ms": target["budget_ms"],
                        "predictor": str(env.artifacts.local_path(artifact))})
    return {"resolved_targets": targets,
            "cache_dir": str(env.artifacts.local_dir("cache/search"))}


def _finish(env: JobEnv, job: ClaimedJob, result: dict[str, Any]) -> dict[str, Any]:
    files = env.artifacts.list(f"jobs/{job.id}")
    prefix = f"jobs/{job.id}/"
    return {**result, "artifacts": [name.removeprefix(prefix) for name, _ in files
                                    if "/" not in name.removeprefix(prefix)]}


@register_job("search", prepare=_prepare, finish=_finish)
def run_search_job(ctx: JobContext) -> dict[str, Any]:
    """Run the search into the job's folder; returns the report."""
    from search.api import SearchSpec, run_search
    from search.driver import SearchCancelled
    from service.jobs.ray_estimator import cluster_wrapper

    params = ctx.params
    space_params = {k: v for k, v in params["params"].items()
                    if k not in ("resolution", "classes")}
    spec = SearchSpec(
        space=params["space"], space_params=space_params, targets=params["resolved_targets"],
        estimator=params["estimator"], strategy=params["strategy"], data=params["data"],
        evaluations=max(4, params["limits"]["evaluations"]), seed=params["seed"],
        # Jobs stored before the margin existed searched at the prediction itself.
        margin_sigmas=params.get("margin_sigmas", 0.0),
        cache_dir=params["cache_dir"], train_minutes=params.get("train_minutes"),
        train_epochs=params.get("train_epochs"), train_top=params.get("train_top", 1),
        # Jobs stored before `formats` existed export SearchSpec's default set.
        **({"formats": params["formats"]} if "formats" in params else {}))
    deadline = time.monotonic() + 60 * params["limits"]["minutes"]

    def should_stop() -> bool:
        return ctx.should_stop() or time.monotonic() > deadline

    try:
        report = run_search(spec, ctx.work_dir, progress=ctx.progress, should_stop=should_stop,
                            estimator_wrapper=cluster_wrapper())
    except SearchCancelled:
        if ctx.should_stop():
            raise JobCancelled(f"search {ctx.job_id} stopped") from None
        raise RuntimeError(f"limits.minutes: {params['limits']['minutes']} min reached; "
                           "the checkpoint is kept") from None
    return {"report": report.model_dump(mode="json")}
