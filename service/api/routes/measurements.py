"""`/v1/devices/{id}/measurements`: a board's `measurements.json` uploads, merged per kit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from profilers.formats import MeasurementsFile
from service.api.deps import MAX_ID, CurrentUser, DeviceId, StoreDep
from service.schemas import MeasurementSetPublic, UploadResult

router = APIRouter(prefix="/devices/{device_id}/measurements", tags=["measurements"])


@router.post("", response_model=UploadResult, status_code=status.HTTP_201_CREATED)
def upload(device_id: DeviceId, doc: MeasurementsFile, user: CurrentUser,
           store: StoreDep) -> UploadResult:
    """Upload `measurements.json` as written by `python -m profilers run`.

    It is validated (schema_version, non-negative finite latencies, p10 <= median <= p90,
    settings matching the device), then merged into the set of the same kit and
    settings: new keys are added, a stored key is replaced only by a measurement with
    more runs, and partial uploads of an interrupted run can be sent again safely.
    """
    return store.add_measurements(user.id, device_id, doc)


@router.get("", response_model=list[MeasurementSetPublic])
def list_sets(device_id: DeviceId, user: CurrentUser,
              store: StoreDep) -> list[MeasurementSetPublic]:
    return store.list_measurement_sets(user.id, device_id)


@router.get("/{set_id}", response_model=MeasurementsFile)
def get_set(device_id: DeviceId, set_id: Annotated[int, Path(ge=1, le=MAX_ID)],
            user: CurrentUser, store: StoreDep) -> MeasurementsFile:
    """One set as a `measurements.json` document."""
    return store.get_measurements(user.id, device_id, set_id)
