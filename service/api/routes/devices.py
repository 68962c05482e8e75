"""`/v1/devices`: device profiles, their profiling kits, and local profiling jobs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import ArtifactsDep, CurrentUser, DeviceId, StoreDep
from service.schemas import KIT_FORMAT, DeviceCreate, DevicePublic, JobPublic, KitPending
from spaces import get_space, space_params

router = APIRouter(prefix="/devices", tags=["devices"])

KitFormat = Annotated[str | None, Query(
    pattern="^(onnx|tflite|openvino|pt2)$",
    description="Kit format; default: the one the device's backend reads.")]
SpaceName = Annotated[str, Query(min_length=1, max_length=64, examples=["mbv2"])]
Params = Annotated[list[str] | None, Query(
    alias="param", max_length=16, description="Space parameter KEY=VALUE, repeatable.",
    examples=[["resolution=32"]])]


def parse_space(name: str, pairs: list[str] | None) -> tuple[str, dict[str, Any]]:
    """A space name and `KEY=VALUE` parameters -> the space's canonical (name, params).

    Raises:
        UnknownSpaceError, ValueError: Unknown space, parameter or value.
    """
    defaults = space_params(name)
    values: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or key not in defaults:
            raise ValueError(f"param {pair!r}: expected KEY=VALUE with KEY one of "
                             f"{', '.join(defaults)}")
        try:
            values[key] = type(defaults[key])(raw)
        except ValueError:
            raise ValueError(f"param {key}: expected {type(defaults[key]).__name__}, "
                             f"got {raw!r}") from None
    space = get_space(name, **values)
    return space.name, space.params


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DevicePublic)
def create_device(spec: DeviceCreate, user: CurrentUser, store: StoreDep) -> DevicePublic:
    """Describe a device: backend, hardware, threads, precision (and TFLite delegate)."""
    return store.create_device(user.id, spec)


@router.get("", response_model=list[DevicePublic])
def list_devices(user: CurrentUser, store: StoreDep) -> list[DevicePublic]:
    return store.list_devices(user.id)


@router.get("/{device_id}", response_model=DevicePublic)
def get_device(device_id: DeviceId, user: CurrentUser, store: StoreDep) -> DevicePublic:
    return store.get_device(user.id, device_id)


@router.delete("/{device_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_device(device_id: DeviceId, user: CurrentUser, store: StoreDep) -> Response:
    """Delete the device with its measurements and predictors."""
    store.delete_device(user.id, device_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{device_id}/kit", response_model=KitPending, status_code=status.HTTP_202_ACCEPTED,
            responses={200: {"content": {"application/zip": {}},
                             "description": "The kit, once built."}})
def get_kit(device_id: DeviceId, user: CurrentUser, store: StoreDep, artifacts: ArtifactsDep,
            space: SpaceName, param: Params = None, format: KitFormat = None) -> Any:
    """The profiling kit of SPACE for this device's backend (zip), or 202 while it builds.

    The first request starts a `kit` job and answers 202 with it; poll the job (or this
    URL, after `Retry-After` seconds) until it answers 200 with the zip.
    """
    device = store.get_device(user.id, device_id)
    name, params = parse_space(space, param)
    fmt = format or KIT_FORMAT[device.backend]
    precision = device.precision if fmt == "tflite" else "fp32"
    cached = store.find_kit(space=name, params=params, fmt=fmt, precision=precision)
    if cached is not None:
        filename = f"kit-{name}-{fmt}.zip"
        return StreamingResponse(
            artifacts.open(cached), media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{filename}"',
                     "Content-Length": str(artifacts.size(cached))})
    job_params = {"space": name, "params": params, "format": fmt, "precision": precision}
    job = store.find_active(user.id, "kit", job_params) or store.submit(user.id, "kit",
                                                                          job_params)
    return JSONResponse(KitPending(job=job).model_dump(mode="json"), status_code=202,
                        headers={"Retry-After": "10", "Location": f"/v1/jobs/{job.id}"})


class ProfileCreate(BaseModel):
    """Measure the device's kit on the machine that runs the job (the service's host)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"space": "nb201", "params": {"resolution": 16}, "archs": 5}]})

    space: str = Field(min_length=1, max_length=64)
    params: dict[str, int | float | str] = Field(default_factory=dict)
    archs: int = Field(default=5, ge=0, le=100)
    runs: int | None = Field(default=None, ge=1, le=10_000)
    budget_s: float | None = Field(default=None, gt=0, le=86_400)


@router.post("/{device_id}/profile", response_model=JobPublic,
             status_code=status.HTTP_202_ACCEPTED)
def profile_device(device_id: DeviceId, spec: ProfileCreate, user: CurrentUser,
                   store: StoreDep) -> JobPublic:
    """Start a `profile` job: kit + measurement here, merged into the device's data."""
    store.get_device(user.id, device_id)
    name, params = parse_space(spec.space, [f"{k}={v}" for k, v in spec.params.items()])
    job_params = {"space": name, "params": params, "archs": spec.archs, "runs": spec.runs,
                  "budget_s": spec.budget_s}
    return store.submit(user.id, "profile", job_params, device_id=device_id)
