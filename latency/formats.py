"""The files latency/ reads and writes: LUTs, end-to-end samples, predictors.

Each is a pydantic model with a ``schema_version``, checked before the fields so an old
or future file fails with one line. What binds them together is identity: a LUT, a set
of end-to-end samples and a predictor each name the search space they are about
(:class:`SpaceRef`, name + parameters) and the device/backend that measured them
(:class:`DeviceRef`); mixing two identities raises a ``ValueError`` naming the field that
differs. Documented field by field in ``docs/formats.md``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from profilers.formats import Measurement, MeasurementsFile
from profilers.schema import check_schema_version, replace_atomically, validate_versioned
from spaces import Space, get_space

__all__ = [
    "E2E_SCHEMA_VERSION",
    "LUT_SCHEMA_VERSION",
    "PREDICTOR_SCHEMA_VERSION",
    "DeviceRef",
    "E2EFile",
    "E2ESample",
    "LutFile",
    "PredictorFile",
    "SpaceRef",
    "read_json",
    "robust_cv",
    "write_json",
]

LUT_SCHEMA_VERSION = 1
# Which statistic of a Measurement is "the" latency: the median, or the 10th percentile,
# the robust estimate of the uncontended time on a shared, loaded machine (contention
# only ever adds time, so the low tail is what the model itself costs).
Statistic = Literal["median_ms", "p10_ms"]
STATISTICS: tuple[str, ...] = ("median_ms", "p10_ms")
E2E_SCHEMA_VERSION = 1
PREDICTOR_SCHEMA_VERSION = 1


def robust_cv(values: list[float] | np.ndarray) -> float | None:
    """``(p75 - p25) / 1.349 / median`` of ``values`` (the profilers' spread); None if < 2."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size < 2 or not np.all(np.isfinite(arr)) or np.median(arr) <= 0:
        return None
    p25, p50, p75 = np.percentile(arr, [25, 50, 75])
    return float((p75 - p25) / 1.349 / p50)


class SpaceRef(BaseModel):
    """A search space by name and parameters, enough to rebuild it with ``get_space``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, space: Space) -> SpaceRef:
        return cls(name=space.name, params=dict(space.params))

    def build(self) -> Space:
        """The space itself; a ValueError names an unknown space or parameter."""
        try:
            return get_space(self.name, **self.params)
        except KeyError as exc:
            raise ValueError(str(exc)) from None

    def check_same(self, other: SpaceRef, what: str) -> None:
        """Raise ValueError unless ``other`` is the same space (``what`` names the input)."""
        if self.name != other.name:
            raise ValueError(f"{what}: space {other.name!r} is not the predictor's {self.name!r}")
        if _norm(self.params) != _norm(other.params):
            raise ValueError(
                f"{what}: space parameters {other.params} differ from the predictor's {self.params}"
            )


def _norm(params: dict[str, Any]) -> dict[str, Any]:
    # width 1 and 1.0 are the same parameter once through JSON
    return {k: float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
            for k, v in params.items()}


class DeviceRef(BaseModel):
    """Which runtime on which machine measured: a predictor is only valid there.

    Attributes:
        backend: Profiler backend name (``onnxruntime``, ``openvino``, ``tflite``, ``torch``).
        backend_version: The runtime's version string.
        device: ``CPU``, ``GPU.0``, ``cuda:0``, ``delegate:<lib>``.
        threads: Intra-op threads.
        precision: ``fp32``, ``fp16``, ``bf16`` or ``int8``.
        cpu: The host's CPU model.
        machine: ``x86_64``, ``aarch64``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str
    backend_version: str
    device: str
    threads: int = Field(ge=1)
    precision: str
    cpu: str
    machine: str

    @classmethod
    def of(cls, doc: MeasurementsFile) -> DeviceRef:
        s = doc.settings
        return cls(backend=s.backend, backend_version=s.backend_version, device=s.device,
                   threads=s.threads, precision=s.precision, cpu=doc.host.cpu,
                   machine=doc.host.machine)

    @classmethod
    def of_measurement(cls, m: Measurement) -> DeviceRef:
        return cls(backend=m.backend, backend_version=m.backend_version, device=m.device,
                   threads=m.threads, precision=m.precision, cpu=m.host.cpu,
                   machine=m.host.machine)

    def label(self) -> str:
        return f"{self.backend} {self.backend_version} {self.device} {self.threads}t " \
               f"{self.precision} on {self.cpu}"

    def check_same(self, other: DeviceRef | None, what: str) -> None:
        """Raise ValueError naming the first field where ``other`` differs (None: unknown, ok)."""
        if other is None:
            return
        for name in type(self).model_fields:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                raise ValueError(f"{what}: measured with {name} {theirs!r}, "
                                 f"the predictor's is {mine!r} ({self.label()})")


class LutFile(BaseModel):
    """A lookup table on disk: per-cell measurements of one space on one device.

    Attributes:
        space: The space whose cells the keys are.
        device: Where they were measured.
        reference_key: The cell re-measured through the runs (noise floor), if known.
        reference: Its medians (ms), all runs merged into this table, in order.
        statistic: Which field of an entry is its latency (``median_ms`` or ``p10_ms``).
        entries: One measurement per LUT key (kinds cell, stem, head, fixed).
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: int = LUT_SCHEMA_VERSION
    space: SpaceRef
    device: DeviceRef
    reference_key: str | None = None
    reference: list[float] = Field(default_factory=list)
    statistic: Statistic = "median_ms"
    entries: list[Measurement] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _version(cls, data: Any) -> Any:
        check_schema_version(data, expected=LUT_SCHEMA_VERSION, what="LUT file", required=False)
        return data

    @model_validator(mode="after")
    def _check(self) -> LutFile:
        keys = [m.key for m in self.entries]
        if len(keys) != len(set(keys)):
            raise ValueError("entries: a key appears twice")
        if any(m.kind == "arch" for m in self.entries):
            raise ValueError("entries: a LUT holds cells, not whole archs (kind 'arch')")
        return self


class E2ESample(BaseModel):
    """One architecture measured end to end."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arch: str = Field(min_length=1)
    latency_ms: float

    @field_validator("latency_ms")
    @classmethod
    def _positive(cls, value: float) -> float:
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"latency_ms must be a finite number > 0, got {value}")
        return value


class E2EFile(BaseModel):
    """End-to-end measured archs (``e2e.json``): training or held-out data for predictors.

    Attributes:
        space: The space the arch strings belong to.
        device: Where they were measured (None: unknown, e.g. a published table).
        reference: Reference-cell medians (ms) of the run that measured them, the noise floor.
        samples: (arch string, latency in ms) pairs.
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: int = E2E_SCHEMA_VERSION
    space: SpaceRef
    device: DeviceRef | None = None
    reference: list[float] = Field(default_factory=list)
    samples: list[E2ESample] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _version(cls, data: Any) -> Any:
        check_schema_version(data, expected=E2E_SCHEMA_VERSION, what="e2e file", required=False)
        return data


class PredictorFile(BaseModel):
    """A fitted predictor (``pred.json``): its kind, what it is bound to, and its state.

    Attributes:
        kind: Registry name (``lut``, ``fox``, ``residual``, ``flops``).
        space: The space it predicts for; archs of another space are refused.
        device: The device/backend it was fitted on (None when fitted from samples of
            unknown origin).
        lut: The lookup table it sums, embedded (None for kinds fitted without one).
        noise_floor: Robust CV of the reference-cell medians behind it, if known.
        e2e_samples: How many end-to-end measured archs it was fitted on.
        floor_ms: Predictions never go below this (half the fastest measured arch).
        state: Kind-specific numbers (coefficients, trees), plain JSON: no pickle.
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: int = PREDICTOR_SCHEMA_VERSION
    kind: str
    space: SpaceRef
    device: DeviceRef | None = None
    lut: LutFile | None = None
    noise_floor: float | None = None
    e2e_samples: int = Field(default=0, ge=0)
    floor_ms: float = Field(default=0.0, ge=0)
    state: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _version(cls, data: Any) -> Any:
        check_schema_version(data, expected=PREDICTOR_SCHEMA_VERSION, what="predictor file",
                             required=False)
        return data


def read_json(path: str | Path, model: type[BaseModel], *, expected: int, what: str) -> Any:
    """Read ``path`` as ``model`` (schema_version checked first).

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not JSON, another schema_version, or an invalid field (named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON {what} ({exc})") from None
    try:
        return validate_versioned(data, model, expected=expected, what=what)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def write_json(path: str | Path, doc: BaseModel) -> None:
    """Write ``doc`` to ``path`` atomically (temporary file, then rename)."""
    payload = doc.model_dump_json(indent=1).encode()
    replace_atomically(Path(path), lambda handle: handle.write(payload))
