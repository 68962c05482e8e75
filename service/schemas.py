"""Request and response bodies of the API: `*Create` (what a client sends) and `*Public`
(what the service answers, an immutable snapshot of the store).

Every public model is frozen; the store builds them, routes return them. Examples here
feed the OpenAPI document (`/v1/openapi.json`).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

API_VERSION = "0.1.0"
Backend = Literal["onnxruntime", "openvino", "tflite", "torch"]
# The kit format each backend reads (OpenVINO reads ONNX itself, faster to export).
KIT_FORMAT: dict[str, str] = {
    "onnxruntime": "onnx", "openvino": "onnx", "tflite": "tflite", "torch": "pt2"}
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINAL_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$"


class Public(BaseModel):
    """Base of every response body: frozen, extra fields forbidden."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Problem(Public):
    """Every 4xx/5xx answer: what went wrong, and where when a field is at fault."""

    detail: str = Field(examples=["device 7 not found"])
    field: str | None = Field(default=None, examples=["body.threads"])


class UserPublic(Public):
    id: int
    name: str
    is_admin: bool
    created_at: datetime


class TokenPublic(Public):
    id: int
    user: str
    name: str
    created_at: datetime
    revoked: bool


class DeviceCreate(BaseModel):
    """A device profile: the runtime, the hardware, and how the runtime is set up on it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "name": "pi5-xnnpack", "backend": "tflite",
            "hardware": "Raspberry Pi 5, Cortex-A76 x4 @ 2.4 GHz", "threads": 4,
            "precision": "int8", "delegate": None}]},
    )

    name: str = Field(pattern=NAME_PATTERN, description="Unique among your devices.")
    backend: Backend
    hardware: str = Field(min_length=1, max_length=512, description="Free-form description.")
    threads: int = Field(default=1, ge=1, le=256)
    precision: Literal["fp32", "int8"] = "fp32"
    delegate: str | None = Field(
        default=None, max_length=512, description="TFLite external delegate library path."
    )

    @model_validator(mode="after")
    def _delegate_needs_tflite(self) -> DeviceCreate:
        if self.delegate is not None and self.backend != "tflite":
            raise ValueError(f"delegate: only the tflite backend takes one, not {self.backend}")
        return self


class DevicePublic(Public):
    id: int
    name: str
    backend: Backend
    hardware: str
    threads: int
    precision: str
    delegate: str | None
    created_at: datetime


class MeasurementSetPublic(Public):
    """One kit measured under one set of settings on a device (uploads merge into it)."""

    id: int
    device_id: int
    space: str
    params: dict[str, Any]
    format: str
    manifest_sha256: str
    settings: dict[str, Any]
    host: dict[str, Any]
    cells: int
    archs: int
    complete: bool
    updated_at: datetime


class UploadResult(Public):
    """What an upload did: entries added, replaced by better ones, or kept."""

    set: MeasurementSetPublic
    added: int = Field(description="Keys the set did not have.")
    improved: int = Field(description="Keys replaced by a measurement with more runs.")
    kept: int = Field(description="Keys whose stored measurement had as many runs or more.")


class JobPublic(Public):
    """A background job: kit build, profiling run, predictor fit or search."""

    id: int
    kind: str
    state: JobState
    device_id: int | None
    params: dict[str, Any]
    progress: float = Field(description="0..1")
    message: str
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    eta_s: float | None = Field(description="Seconds left, from the progress so far.")
    log_tail: str = Field(description="The last lines the job logged.")


class KitPending(Public):
    """The kit is being built: poll the job, then ask for the kit again."""

    job: JobPublic


class PredictorFit(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"kind": "lut", "measurement_set": None}]},
    )

    kind: str = Field(default="lut", min_length=1, max_length=32,
                      description="A registered latency predictor, e.g. lut.")
    measurement_set: int | None = Field(
        default=None, description="Set to fit on; default: the device's most complete set."
    )


class PredictorPublic(Public):
    id: int
    device_id: int
    kind: str
    job_id: int | None
    report: dict[str, Any]
    created_at: datetime


class SearchTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_id: int
    budget_ms: float = Field(gt=0, description="Latency budget on this device.")

    @field_validator("budget_ms")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("budget_ms must be finite")
        return value


class SearchLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    evaluations: int = Field(default=200, ge=4, le=100_000)
    minutes: float = Field(default=60.0, gt=0, le=7 * 24 * 60)


class SearchCreate(BaseModel):
    """A search: a space, devices with a budget each, how to score and how to search."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "space": "mbv2", "params": {"resolution": 224},
            "targets": [{"device_id": 1, "budget_ms": 25.0}],
            "estimator": "zico", "strategy": "evolution", "data": "cifar10",
            "limits": {"evaluations": 200, "minutes": 30}, "seed": 0,
            "train_minutes": 5}]},
    )

    space: str = Field(min_length=1, max_length=64)
    params: dict[str, int | float | str] = Field(default_factory=dict)
    targets: list[SearchTarget] = Field(min_length=1, max_length=16)
    estimator: str = Field(default="zico", min_length=1, max_length=64)
    strategy: str = Field(default="evolution", min_length=1, max_length=64)
    data: str | None = Field(default=None, max_length=1024,
                             description="Data set reference for accuracy estimation.")
    limits: SearchLimits = Field(default_factory=SearchLimits)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    margin_sigmas: float = Field(
        default=1.0, ge=0, le=10, allow_inf_nan=False,
        description="Each budget must hold at the predicted latency plus this many of the "
        "predictor's standard deviations (0: at the prediction itself).")
    train_minutes: float | None = Field(
        default=None, gt=0, le=24 * 60, allow_inf_nan=False,
        description="Train the winner this many minutes on `data` after the search; the "
        "artifacts are then the trained files and model_card.md. None: initialised weights.")
    train_epochs: int | None = Field(
        default=None, ge=1, le=10_000, description="Instead of train_minutes: an epoch "
        "budget (reproducible whatever the machine's speed; limits.minutes still applies).")
    train_top: int = Field(default=1, ge=1, le=8, description="With a training budget: "
                           "also train the best feasible runners-up and ship the most "
                           "accurate.")
    formats: list[Literal["onnx", "tflite", "tflite-int8", "openvino"]] = Field(
        default_factory=lambda: ["onnx", "tflite", "tflite-int8"], min_length=1,
        max_length=4, description="Files the winner is exported to. Each target device's "
        "own file must be among them, since it is the file timed on that device: ONNX for "
        "onnxruntime and OpenVINO, tflite for TFLite fp32, tflite-int8 for TFLite int8.")

    @field_validator("formats")
    @classmethod
    def _formats_once(cls, formats: list[str]) -> list[str]:
        twice = sorted({f for f in formats if formats.count(f) > 1})
        if twice:
            raise ValueError(f"listed more than once: {', '.join(twice)}")
        return formats

    @model_validator(mode="after")
    def _training_fits(self) -> SearchCreate:
        if self.train_minutes is not None and self.train_epochs is not None:
            raise ValueError("train_minutes/train_epochs: give one training budget, not both")
        if self.train_minutes is not None and \
                self.train_minutes * self.train_top >= self.limits.minutes:
            raise ValueError(
                f"train_minutes: {self.train_minutes:g} min x train_top {self.train_top} "
                f"leaves no time for the search within limits.minutes "
                f"({self.limits.minutes:g}); raise limits.minutes or train less")
        return self


class ArtifactPublic(Public):
    name: str
    bytes: int


class Health(Public):
    status: Literal["ok"]
    database: str
    executor: str
    workers: int
    version: str
