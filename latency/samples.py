"""End-to-end measured architectures: what fox/residual are fitted on and evaluated against.

Three sources give the same :class:`Samples`: an ``e2e.json`` (:class:`E2EFile`), a CSV
of ``arch,latency_ms`` (a device measured elsewhere, a published table such as
HW-NAS-Bench for ``nb201``; it carries no space, so the caller names it), and the whole
archs of a ``measurements.json`` (their arch strings are in the kit's manifest, which the
measurements name by hash). Every arch is decoded by its space, so a string the space
cannot hold fails here with the row named; latencies must be finite and > 0.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from profilers.formats import KitManifest, MeasurementsFile, manifest_hash
from spaces import Arch, ArchError, Space

from .formats import (
    E2E_SCHEMA_VERSION,
    STATISTICS,
    DeviceRef,
    E2EFile,
    E2ESample,
    SpaceRef,
    read_json,
    write_json,
)

__all__ = ["Samples", "load_samples", "samples_from_measurements", "save_samples"]


@dataclass
class Samples:
    """Archs with measured end-to-end latency, bound to a space and (maybe) a device.

    Attributes:
        space: The space the archs are of.
        archs: The architectures.
        latency_ms: Their measured latency, shape (len(archs),).
        device: Where they were measured (None: unknown).
        reference: Reference-cell medians of the run (noise floor), possibly empty.
    """

    space: SpaceRef
    archs: list[Arch]
    latency_ms: np.ndarray
    device: DeviceRef | None = None
    reference: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.latency_ms = np.asarray(self.latency_ms, dtype=np.float64)
        if self.latency_ms.shape != (len(self.archs),):
            raise ValueError(f"latency_ms: {self.latency_ms.shape[0]} values for "
                             f"{len(self.archs)} archs")
        bad = np.flatnonzero(~np.isfinite(self.latency_ms) | (self.latency_ms <= 0))
        if bad.size:
            raise ValueError(f"latency_ms of sample {bad[0]} is {self.latency_ms[bad[0]]}: "
                             "latencies must be finite and > 0")

    def __len__(self) -> int:
        return len(self.archs)

    def subset(self, index: Sequence[int] | np.ndarray) -> Samples:
        """The samples at ``index`` (same space, device and reference)."""
        index = np.asarray(index, dtype=np.int64)
        return Samples(self.space, [self.archs[i] for i in index], self.latency_ms[index],
                       self.device, list(self.reference))

    def to_file(self, space: Space) -> E2EFile:
        return E2EFile(space=self.space, device=self.device, reference=self.reference,
                       samples=[E2ESample(arch=space.encode(a), latency_ms=float(t))
                                for a, t in zip(self.archs, self.latency_ms, strict=True)])


def _decode(space: Space, text: str, where: str) -> Arch:
    try:
        return space.decode(text)
    except ArchError as exc:
        raise ArchError(f"{where}: {exc}") from None


def _csv_rows(text: str) -> list[tuple[int, str, str]]:
    """(line number, arch, latency) per data line; the latency is the last field.

    mbv2 arch strings hold commas, so a line splits at its last comma; a quoted arch
    (``"k3e6-relu,...",12.5``, as the csv module writes it) is read too.
    """
    rows = []
    for number, line in enumerate(text.splitlines()[1:], start=2):
        if not line.strip():
            continue
        if line.startswith('"'):
            fields = next(csv.reader([line]))
            arch, value = ",".join(fields[:-1]), fields[-1] if len(fields) > 1 else ""
        else:
            arch, _, value = line.rpartition(",")
        rows.append((number, arch.strip(), value.strip()))
    return rows


def _from_csv(path: Path, space_ref: SpaceRef) -> Samples:
    space = space_ref.build()
    text = path.read_text()
    header = text.splitlines()[0].strip().replace(" ", "") if text.strip() else ""
    if header != "arch,latency_ms":
        raise ValueError(f"{path}: a CSV needs the header 'arch,latency_ms', got {header!r}")
    archs, times = [], []
    for line, arch, raw in _csv_rows(text):
        archs.append(_decode(space, arch, f"{path} line {line}"))
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{path} line {line}: latency_ms {raw!r} is not a number") from None
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{path} line {line}: latency_ms must be finite and > 0, "
                             f"got {value}")
        times.append(value)
    if not archs:
        raise ValueError(f"{path}: no samples")
    return Samples(space_ref, archs, np.array(times))


def load_samples(path: str | Path, *, space: SpaceRef | None = None) -> Samples:
    """Read ``e2e.json`` or a CSV of ``arch,latency_ms``.

    Args:
        path: The file; ``.csv`` is read as CSV, anything else as an ``E2EFile``.
        space: The space a CSV's archs are of (required for CSV); for JSON, checked
            against the file's own.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Bad JSON/CSV, a non-positive or NaN latency, another space (named).
        ArchError: An arch string the space cannot hold (the row named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"e2e file not found: {path}")
    if path.suffix.lower() == ".csv":
        if space is None:
            raise ValueError(f"{path}: a CSV does not name its space; give the space "
                             "(--space/-p, or --measurements)")
        return _from_csv(path, space)
    doc: E2EFile = read_json(path, E2EFile, expected=E2E_SCHEMA_VERSION, what="e2e file")
    if space is not None:
        space.check_same(doc.space, str(path))
    built = doc.space.build()
    archs = [_decode(built, s.arch, f"{path} sample {i}") for i, s in enumerate(doc.samples)]
    return Samples(doc.space, archs, np.array([s.latency_ms for s in doc.samples]),
                   doc.device, list(doc.reference))


def save_samples(path: str | Path, samples: Samples) -> None:
    """Write ``samples`` as ``e2e.json`` (or a CSV when ``path`` ends in ``.csv``)."""
    path = Path(path)
    space = samples.space.build()
    if path.suffix.lower() == ".csv":
        rows = ["arch,latency_ms"] + [f"{space.encode(a)},{t!r}" for a, t in
                                      zip(samples.archs, samples.latency_ms.tolist(), strict=True)]
        path.write_text("\n".join(rows) + "\n")
        return
    write_json(path, samples.to_file(space))


def samples_from_measurements(doc: MeasurementsFile, manifest: KitManifest, *,
                              statistic: str = "median_ms") -> Samples:
    """The whole archs of a measurements file, their strings taken from the kit's manifest.

    ``statistic`` (``median_ms`` or ``p10_ms``) picks each arch's latency, as the LUT's,
    drift-corrected like the LUT's cells (`MeasurementsFile.drift_corrected`).

    Raises:
        ValueError: The manifest is not the measured kit's (hash differs), or has no entry
            for a measured arch key.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    if manifest_hash(manifest) != doc.kit.manifest_sha256:
        raise ValueError("kit: the manifest is not the one these measurements were taken "
                         f"with (sha256 {manifest_hash(manifest)[:12]} != "
                         f"{doc.kit.manifest_sha256[:12]})")
    space_ref = SpaceRef(name=doc.kit.space, params=doc.kit.params)
    space = space_ref.build()
    strings = {e.key: e.arch for e in manifest.entries if e.kind == "arch"}
    archs, times = [], []
    for m in doc.archs:
        text = strings.get(m.key)
        if text is None:
            raise ValueError(f"kit: no arch entry {m.key!r} in the manifest")
        archs.append(_decode(space, text, f"kit entry {m.key}"))
        times.append(float(getattr(doc.drift_corrected(m), statistic)))
    return Samples(space_ref, archs, np.array(times), DeviceRef.of(doc), list(doc.reference))
