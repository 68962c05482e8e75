"""The file formats that profilers owns: the profiling kit and ``measurements.json``.

The kit (a zip of model files plus ``manifest.json``) is defined in :mod:`profilers.kit`
and re-exported here, so models/ (which writes kits) and the runner (which reads them)
import one module for every format. This module defines what the runner writes and
latency/ reads: a :class:`MeasurementsFile` holding one :class:`Measurement` per kit entry
plus the settings, the host and the noise floor of the run.

Loaders check ``schema_version`` first, so an old or future file fails with one clear
line. Saving is atomic and never replaces a file with one that holds fewer measurements,
so an interrupted or failed run cannot destroy earlier results. Documented field by
field, with examples, in ``docs/formats.md``.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from profilers.errors import MeasurementsError, first_line
from profilers.kit import (
    KIT_SCHEMA_VERSION,
    MANIFEST_NAME,
    EntryKind,
    KitEntry,
    KitFormat,
    KitManifest,
    Precision,
    manifest_hash,
    read_kit,
    read_manifest,
    write_kit,
)
from profilers.schema import check_schema_version, replace_atomically, validate_versioned

__all__ = [
    "KIT_SCHEMA_VERSION",
    "MANIFEST_NAME",
    "MEASUREMENTS_SCHEMA_VERSION",
    "BackendSettings",
    "EntryKind",
    "HostInfo",
    "KitEntry",
    "KitFormat",
    "KitManifest",
    "KitRef",
    "Measurement",
    "MeasurementsFile",
    "Precision",
    "ProtocolSettings",
    "load_measurements",
    "manifest_hash",
    "read_kit",
    "read_manifest",
    "save_measurements",
    "write_kit",
]

MEASUREMENTS_SCHEMA_VERSION = 1


class HostInfo(BaseModel):
    """Facts about the machine that measured.

    Attributes:
        cpu: CPU model (``/proc/cpuinfo``'s model name, a board's model, or the platform's).
        cores: Logical CPUs this process may run on (its affinity mask).
        machine: Architecture, e.g. ``x86_64`` or ``aarch64``.
        os: ``platform.platform()``, e.g. ``Linux-6.8.0-x86_64-with-glibc2.39``.
        python: Python version, e.g. ``3.11.9``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu: str
    cores: int = Field(ge=1)
    machine: str
    os: str
    python: str

    @classmethod
    def current(cls) -> HostInfo:
        """Facts about this machine."""
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        return cls(
            cpu=_cpu_model(),
            cores=cores,
            machine=platform.machine(),
            os=platform.platform(),
            python=platform.python_version(),
        )


def _cpu_model() -> str:
    """The CPU model from /proc/cpuinfo (x86 ``model name``; Arm boards' ``Model``)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            name, sep, value = line.partition(":")
            if sep and value.strip():
                fields.setdefault(name.strip().lower(), value.strip())
    except OSError:
        pass
    for name in ("model name", "model", "hardware", "cpu model"):
        if name in fields:
            return fields[name]
    return platform.processor() or platform.machine() or "unknown"


class Measurement(BaseModel):
    """The latency of one kit entry on one backend, device, thread count and precision.

    Statistics are over all timed runs of the entry, pooled over every round
    (see :mod:`profilers.protocol`). All times are milliseconds of one inference.

    Attributes:
        cv: Robust coefficient of variation: ``(p75 - p25) / 1.349 / median`` (the IQR
            scaled to a normal sigma, over the median); 0.05 means a 5% spread.
        runs: Timed runs behind the statistics (warm-up runs excluded).
        reference_ms: Median of the reference cell's medians taken while this entry's
            chunk was measured: the machine's speed at the time. Dividing by it (times
            the run's overall reference median) removes drift between chunks; None in
            files written before it was recorded.
        probe_ms: Median of the whole-arch probe (``MeasurementsFile.probe_key``) timed
            at the start and the end of this entry's chunk. Other load can slow a whole
            arch (weights beyond the caches) while the small reference cell runs as fast
            as ever; this level catches such chunks. None without a probe.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    kind: EntryKind
    backend: str
    backend_version: str
    device: str
    threads: int = Field(ge=1)
    precision: Precision
    median_ms: float = Field(ge=0)
    p10_ms: float = Field(ge=0)
    p90_ms: float = Field(ge=0)
    mean_ms: float = Field(ge=0)
    cv: float = Field(ge=0)
    runs: int = Field(ge=1)
    reference_ms: float | None = Field(default=None, gt=0)
    probe_ms: float | None = Field(default=None, gt=0)
    host: HostInfo
    timestamp: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Measurement:
        if not self.p10_ms <= self.median_ms <= self.p90_ms:
            raise ValueError(f"{self.key}: need p10_ms <= median_ms <= p90_ms")
        return self


class KitRef(BaseModel):
    """Which kit a measurements file is about."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    space: str
    params: dict[str, Any] = Field(default_factory=dict)
    format: KitFormat
    manifest_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @classmethod
    def of(cls, manifest: KitManifest) -> KitRef:
        """The reference to ``manifest``."""
        return cls(
            space=manifest.space,
            params=manifest.params,
            format=manifest.format,
            manifest_sha256=manifest_hash(manifest),
        )


class BackendSettings(BaseModel):
    """How the backend ran: a resumed run must use exactly these."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str
    backend_version: str
    device: str
    threads: int = Field(ge=1)
    precision: Precision
    delegate: str | None = None


class ProtocolSettings(BaseModel):
    """The measurement protocol's knobs (see :mod:`profilers.protocol`).

    Attributes:
        warmup_runs: Untimed runs before a model's first timed run (at least this many...).
        warmup_ms: ...and at least this much wall time of them.
        runs: Timed runs per model in total (over all rounds), before re-measuring.
        min_runs: Timed runs per model however small ``budget_ms`` is.
        budget_ms: Cap on a model's timed inference time (summed samples); None: no cap.
        rounds: Rounds per batch: each round times every model ``ceil(runs / rounds)``
            times, so each model's samples are spread over the whole batch.
        round_warmup_runs: Untimed runs each time a round comes back to a model.
        max_cv: A model whose robust CV exceeds this is re-measured.
        remeasure_passes: How many times at most a noisy model is re-measured.
        reference_runs: Timed runs behind each sample of the reference cell.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    warmup_runs: int = Field(default=5, ge=0)
    warmup_ms: float = Field(default=100.0, ge=0)
    runs: int = Field(default=60, ge=1)
    min_runs: int = Field(default=10, ge=1)
    budget_ms: float | None = Field(default=None, gt=0)
    rounds: int = Field(default=20, ge=1)
    round_warmup_runs: int = Field(default=1, ge=0)
    max_cv: float = Field(default=0.1, gt=0)
    remeasure_passes: int = Field(default=1, ge=0)
    reference_runs: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> ProtocolSettings:
        if self.min_runs > self.runs:
            raise ValueError(f"min_runs ({self.min_runs}) must be <= runs ({self.runs})")
        if self.rounds > self.runs:
            raise ValueError(f"rounds ({self.rounds}) must be <= runs ({self.runs})")
        return self


class MeasurementsFile(BaseModel):
    """``measurements.json``: every measurement of one kit under one set of settings.

    Attributes:
        kit: The kit measured (its manifest's hash identifies it).
        settings: Backend, device, threads, precision (and delegate) used for every entry.
        protocol: The protocol's settings.
        host: The machine that measured.
        reference_key: The cell re-measured through the run to track the machine's noise.
        reference: Medians (ms) of ``reference_key``, in the order they were taken; their
            spread is the noise floor a predictor's error can be compared with.
        probe_key: The whole arch timed at the start and end of every chunk (None: the
            kit has no arch, or the file predates the probe).
        probe: Its medians (ms), in the order they were taken.
        cells: Measurements of kinds cell, stem, head and fixed (the LUT), in kit order.
        archs: Measurements of whole architectures (predictor validation), separate.
        complete: True once every kit entry is measured.
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: int = MEASUREMENTS_SCHEMA_VERSION
    kit: KitRef
    settings: BackendSettings
    protocol: ProtocolSettings
    host: HostInfo
    reference_key: str | None = None
    reference: list[float] = Field(default_factory=list)
    probe_key: str | None = None
    probe: list[float] = Field(default_factory=list)
    cells: list[Measurement] = Field(default_factory=list)
    archs: list[Measurement] = Field(default_factory=list)
    complete: bool = False

    @model_validator(mode="before")
    @classmethod
    def _version(cls, data: Any) -> Any:
        check_schema_version(
            data, expected=MEASUREMENTS_SCHEMA_VERSION, what="measurements file", required=False
        )
        return data

    @model_validator(mode="after")
    def _check(self) -> MeasurementsFile:
        if any(m.kind == "arch" for m in self.cells) or any(m.kind != "arch" for m in self.archs):
            raise ValueError("cells holds kinds cell/stem/head/fixed, archs holds kind arch")
        keys = [m.key for m in (*self.cells, *self.archs)]
        if len(keys) != len(set(keys)):
            raise ValueError("a key is measured twice")
        return self

    def count(self) -> int:
        """Number of measurements (cells and archs)."""
        return len(self.cells) + len(self.archs)

    def keys(self) -> set[str]:
        """Keys already measured."""
        return {m.key for m in (*self.cells, *self.archs)}

    def drift_corrected(self, measurement: Measurement) -> Measurement:
        """``measurement`` at the run's typical machine speed.

        Its times are scaled by the run's overall reference median over the reference
        level of its own chunk, so entries measured while the machine was slow or fast
        compare like for like. Unchanged without a recorded level (older files).
        """
        if measurement.reference_ms is None or not self.reference:
            return measurement
        overall = sorted(self.reference)[len(self.reference) // 2]
        factor = overall / measurement.reference_ms
        return measurement.model_copy(update={
            "median_ms": measurement.median_ms * factor, "p10_ms": measurement.p10_ms * factor,
            "p90_ms": measurement.p90_ms * factor, "mean_ms": measurement.mean_ms * factor,
            "reference_ms": overall})


def load_measurements(path: str | Path) -> MeasurementsFile:
    """Read and validate a measurements file.

    Raises:
        MeasurementsError: Missing, not JSON, wrong schema_version or invalid fields.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_bytes())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MeasurementsError(f"cannot read {path}: {first_line(exc)}") from exc
    try:
        return validate_versioned(
            data, MeasurementsFile, expected=MEASUREMENTS_SCHEMA_VERSION, what="measurements file"
        )
    except ValueError as exc:
        raise MeasurementsError(f"{path}: {exc}") from exc


def save_measurements(path: str | Path, measurements: MeasurementsFile) -> None:
    """Write ``measurements`` to ``path`` atomically, never losing measurements.

    Raises:
        MeasurementsError: ``path`` exists and is not a readable measurements file, or holds
            more measurements than ``measurements`` (it is then left untouched), or cannot
            be written.
    """
    path = Path(path)
    if path.exists():
        try:
            existing = load_measurements(path)
        except MeasurementsError as exc:
            raise MeasurementsError(f"refusing to overwrite {path}: {exc}") from exc
        if existing.count() > measurements.count():
            raise MeasurementsError(
                f"refusing to overwrite {path} ({existing.count()} measurements) "
                f"with fewer ({measurements.count()})"
            )
    payload = measurements.model_dump_json(indent=2).encode()
    try:
        replace_atomically(path, lambda handle: handle.write(payload))
    except OSError as exc:
        raise MeasurementsError(f"cannot write {path}: {first_line(exc)}") from exc
