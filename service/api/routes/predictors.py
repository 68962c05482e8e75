"""`/v1/devices/{id}/predictor`: fit a latency predictor (a job) and read its report."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import StreamingResponse

from service.api.deps import ArtifactsDep, CurrentUser, DeviceId, StoreDep
from service.schemas import JobPublic, PredictorFit, PredictorPublic

router = APIRouter(prefix="/devices/{device_id}/predictor", tags=["predictors"])


@router.post("", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED)
def fit(device_id: DeviceId, spec: PredictorFit, user: CurrentUser,
        store: StoreDep) -> JobPublic:
    """Start a `predictor` job on the device's measurements; poll `/v1/jobs/{id}`."""
    from latency import list_predictors

    if spec.kind not in list_predictors():
        raise ValueError(f"kind: unknown predictor {spec.kind!r} "
                         f"(known: {', '.join(list_predictors())})")
    store.get_device(user.id, device_id)
    return store.submit(user.id, "predictor", spec.model_dump(), device_id=device_id)


@router.get("", response_model=PredictorPublic)
def report(device_id: DeviceId, user: CurrentUser, store: StoreDep) -> PredictorPublic:
    """The newest predictor's accuracy report (held-out archs: +-10%, RMSE, Kendall tau)."""
    return store.latest_predictor(user.id, device_id)[0]


@router.get("/file", responses={200: {"content": {"application/json": {}}}})
def download(device_id: DeviceId, user: CurrentUser, store: StoreDep,
             artifacts: ArtifactsDep) -> StreamingResponse:
    """The newest predictor's JSON file (the `latency` package's predictor format)."""
    _, artifact = store.latest_predictor(user.id, device_id)
    return StreamingResponse(artifacts.open(artifact), media_type="application/json")
