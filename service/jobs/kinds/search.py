"""The `search` job: run `search.api.run_search` for a `SearchCreate` request.

`prepare` resolves each target device to its profile and its newest predictor's file;
`run` hands `search.api.SearchSpec` those and the request's space, estimator, strategy,
data and limits, with the job's folder as the output folder. `run_search` writes
`model.onnx`, `model.tflite`, `model-int8.tflite` and `report.json` there and resumes from
its own checkpoint in that folder, so a search whose worker died continues where it
stopped. Progress messages (the current best) become the job's status line.
"""

from __future__ import annotations

from typing import Any

from service.jobs.registry import JobContext, JobEnv, register_job
from service.store import ClaimedJob, ConflictError, NotFoundError


def _prepare(env: JobEnv, job: ClaimedJob) -> dict[str, Any]:
    targets = []
    for target in job.params["targets"]:
        device = env.store.get_device(job.owner_id, target["device_id"])
        try:
            _, artifact = env.store.latest_predictor(job.owner_id, device.id)
        except NotFoundError as exc:
            raise ConflictError(f"targets: {exc}") from exc
        predictor = env.artifacts.local_path(artifact)
        targets.append({"device": device.model_dump(mode="json", exclude={"created_at"}),
                        "predictor": str(predictor), "budget_ms": target["budget_ms"]})
    return {"resolved_targets": targets}


def _finish(env: JobEnv, job: ClaimedJob, result: dict[str, Any]) -> dict[str, Any]:
    files = env.artifacts.list(f"jobs/{job.id}")
    return {**result, "artifacts": [name.rsplit("/", 1)[1] for name, _ in files]}


@register_job("search", prepare=_prepare, finish=_finish)
def run_search_job(ctx: JobContext) -> dict[str, Any]:
    """Run the search into the job's folder; returns the report's summary."""
    from search.api import SearchSpec, run_search

    params = ctx.params
    spec = SearchSpec.model_validate({
        "space": params["space"], "params": params["params"],
        "targets": params["resolved_targets"], "estimator": params["estimator"],
        "strategy": params["strategy"], "data": params["data"], "limits": params["limits"],
        "train_minutes": params["train_minutes"], "seed": params["seed"]})
    report = run_search(spec, ctx.work_dir, progress=ctx.progress,
                        should_stop=ctx.should_stop)
    return {"report": report.model_dump(mode="json")}
