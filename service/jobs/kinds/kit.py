"""The `kit` job: build a space's profiling kit once, for every device that needs it.

The kit is cached in the store by (space, parameters, format, precision), so
`GET /v1/devices/{id}/kit` builds it at most once and then streams the same file.
"""

from __future__ import annotations

from typing import Any

from service.jobs.registry import JobCancelled, JobContext, JobEnv, register_job
from service.store import ClaimedJob

KIT_FILE = "kit.zip"


def _finish(env: JobEnv, job: ClaimedJob, result: dict[str, Any]) -> dict[str, Any]:
    params = job.params
    env.store.add_kit(space=params["space"], params=params["params"], fmt=params["format"],
                      precision=params["precision"], artifact=f"jobs/{job.id}/{KIT_FILE}",
                      manifest_sha256=result["manifest_sha256"], entries=result["entries"])
    return result


@register_job("kit", finish=_finish)
def build_kit(ctx: JobContext) -> dict[str, Any]:
    """Write `kit.zip` of `params.space` (with `params.params`) in `params.format`."""
    from models.kit import make_kit
    from profilers.formats import manifest_hash
    from spaces import get_space

    params = ctx.params
    space = get_space(params["space"], **params["params"])

    def progress(done: int, total: int, key: str) -> None:
        if ctx.should_stop():
            raise JobCancelled(f"kit job {ctx.job_id} stopped")
        ctx.progress(done / total, f"{done}/{total} {key}")

    manifest = make_kit(space, params["format"], ctx.work_dir / KIT_FILE,
                        archs=params.get("archs", 5), seed=params.get("seed", 0),
                        precision=params["precision"], progress=progress)
    ctx.log(f"{len(manifest.entries)} models in {KIT_FILE}")
    return {"file": KIT_FILE, "manifest_sha256": manifest_hash(manifest),
            "entries": len(manifest.entries)}
