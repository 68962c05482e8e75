"""`/v1/searches` (search jobs, their artifacts) and `/v1/jobs` (every job kind)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import StreamingResponse

from search.deliver import RUNS
from service.api.deps import ArtifactsDep, CurrentUser, JobId, StoreDep
from service.api.routes.devices import parse_space
from service.jobs.worker import job_dir_name
from service.schemas import ArtifactPublic, JobPublic, SearchCreate
from service.store import NotFoundError, check_name

router = APIRouter(tags=["searches"])

Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10**9)]
ArtifactName = Annotated[str, Path(max_length=128, examples=["model.onnx"])]
MEDIA = {".onnx": "application/octet-stream", ".tflite": "application/octet-stream",
         ".json": "application/json", ".zip": "application/zip", ".md": "text/markdown"}


@router.post("/searches", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED)
def create_search(spec: SearchCreate, user: CurrentUser, store: StoreDep) -> JobPublic:
    """Start a search: the most accurate arch of SPACE within each device's budget."""
    name, params = parse_space(spec.space, [f"{k}={v}" for k, v in spec.params.items()])
    for target in spec.targets:
        device = store.get_device(user.id, target.device_id)
        own = RUNS.get((device.backend, device.precision))
        if own is not None and own not in spec.formats:
            raise ValueError(f"formats: device {device.id} ({device.backend} "
                             f"{device.precision}) is timed on its {own} file; add {own!r}")
    job_params = {**spec.model_dump(mode="json"), "space": name, "params": params}
    return store.submit(user.id, "search", job_params)


@router.get("/searches", response_model=list[JobPublic])
def list_searches(user: CurrentUser, store: StoreDep, limit: Limit = 100,
                  offset: Offset = 0) -> list[JobPublic]:
    return store.list(user.id, kind="search", limit=limit, offset=offset)


@router.get("/searches/{search_id}", response_model=JobPublic)
def get_search(search_id: JobId, user: CurrentUser, store: StoreDep) -> JobPublic:
    """State, progress (0..1), the current best (in `message`), ETA in seconds."""
    return store.get(user.id, search_id, kind="search")


@router.post("/searches/{search_id}/cancel", response_model=JobPublic)
def cancel_search(search_id: JobId, user: CurrentUser, store: StoreDep) -> JobPublic:
    return store.cancel(user.id, search_id, kind="search")


@router.get("/searches/{search_id}/artifacts", response_model=list[ArtifactPublic])
def list_artifacts(search_id: JobId, user: CurrentUser, store: StoreDep,
                   artifacts: ArtifactsDep) -> list[ArtifactPublic]:
    """Files the search delivered: model.onnx, model.tflite, model-int8.tflite, report.json,
    report.md and, when trained, model_card.md and train.json (not its working folders)."""
    store.get(user.id, search_id, kind="search")
    prefix = job_dir_name(search_id)
    listed = ((name.removeprefix(prefix + "/"), size) for name, size in artifacts.list(prefix))
    return [ArtifactPublic(name=name, bytes=size) for name, size in listed if "/" not in name]


@router.get("/searches/{search_id}/artifacts/{name}",
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_artifact(search_id: JobId, name: ArtifactName, user: CurrentUser,
                      store: StoreDep, artifacts: ArtifactsDep) -> StreamingResponse:
    """Stream one artifact of the search."""
    store.get(user.id, search_id, kind="search")
    full = f"{job_dir_name(search_id)}/{check_name(name)}"
    try:
        stream = artifacts.open(full)
    except FileNotFoundError:
        raise NotFoundError(f"search {search_id} has no artifact {name!r}") from None
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    return StreamingResponse(
        stream, media_type=MEDIA.get(suffix, "application/octet-stream"),
        headers={"Content-Disposition": f'attachment; filename="{name}"',
                 "Content-Length": str(artifacts.size(full))})


@router.get("/jobs", response_model=list[JobPublic], tags=["jobs"])
def list_jobs(user: CurrentUser, store: StoreDep, limit: Limit = 100,
              offset: Offset = 0) -> list[JobPublic]:
    """Your jobs of every kind (kit, profile, predictor, search), newest first."""
    return store.list(user.id, limit=limit, offset=offset)


@router.get("/jobs/{job_id}", response_model=JobPublic, tags=["jobs"])
def get_job(job_id: JobId, user: CurrentUser, store: StoreDep) -> JobPublic:
    return store.get(user.id, job_id)


@router.post("/jobs/{job_id}/cancel", response_model=JobPublic, tags=["jobs"])
def cancel_job(job_id: JobId, user: CurrentUser, store: StoreDep) -> JobPublic:
    """Cancel a queued job now, or ask a running one to stop (409 if already final)."""
    return store.cancel(user.id, job_id)
