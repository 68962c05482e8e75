"""`LookupTable`: LUT key -> measured latency of that cell on one device.

The table of HURRICANE and FBNet (Wu et al., "FBNet: Hardware-Aware Efficient ConvNet
Design via Differentiable Neural Architecture Search", CVPR 2019), keyed by readable op
signatures with shapes as once-for-all's tables are, so a table measured for one space
serves any space with the same cells. A key that is not in the table raises
:class:`LookupMissError` naming it: a miss is never counted as 0 ms.

Merging runs: when two runs measured the same key, the table keeps the measurement with
more timed runs; on a tie the one with the lower robust CV; on a tie again the later one.
Runs of another space or another device/backend are refused, not mixed.

Which statistic is a cell's latency is the table's ``statistic``: ``median_ms`` (default)
or ``p10_ms``, the robust choice on a shared machine where other load only adds time
(end-to-end samples must then be taken with the same statistic).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from profilers.formats import Measurement, MeasurementsFile, load_measurements
from spaces import Space

from .formats import (
    LUT_SCHEMA_VERSION,
    STATISTICS,
    DeviceRef,
    LutFile,
    SpaceRef,
    read_json,
    robust_cv,
    write_json,
)

__all__ = ["LookupMissError", "LookupTable"]


class LookupMissError(KeyError):
    """A LUT key the table does not hold; the message names it."""

    def __str__(self) -> str:
        return str(self.args[0])


def _better(new: Measurement, old: Measurement) -> bool:
    """The merge rule: more runs, then lower cv, then later."""
    return (new.runs, -new.cv, new.timestamp) > (old.runs, -old.cv, old.timestamp)


class LookupTable(Mapping[str, Measurement]):
    """Per-cell measurements of one space on one device.

    Args:
        entries: The measurements (kinds cell, stem, head, fixed), keyed by their LUT key.
        space: The space the keys come from.
        device: The device/backend that measured them.
        reference_key: The run's reference cell, if known.
        reference: Its medians (ms), the noise floor of the runs.
        statistic: The field of a measurement that is its latency: ``median_ms`` or ``p10_ms``.

    Example:
        >>> lut = LookupTable.from_measurements("prof/measurements.json")  # doctest: +SKIP
        >>> lut.sum_ms(space, [space.default()])  # doctest: +SKIP
        array([20.1])
    """

    def __init__(self, entries: Iterable[Measurement], *, space: SpaceRef, device: DeviceRef,
                 reference_key: str | None = None, reference: Iterable[float] = (),
                 statistic: str = "median_ms") -> None:
        if statistic not in STATISTICS:
            raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
        self.statistic = statistic
        self.space = space
        self.device = device
        self.reference_key = reference_key
        self.reference = [float(v) for v in reference]
        self._entries: dict[str, Measurement] = {}
        for m in entries:
            if m.kind == "arch":
                raise ValueError(f"entries: {m.key!r} is a whole arch, not a LUT cell")
            device.check_same(DeviceRef.of_measurement(m), f"LUT entry {m.key!r}")
            old = self._entries.get(m.key)
            if old is None or _better(m, old):
                self._entries[m.key] = m

    # --- Mapping ----------------------------------------------------------------------

    def __getitem__(self, key: str) -> Measurement:
        try:
            return self._entries[key]
        except KeyError:
            raise LookupMissError(
                f"LUT miss: key {key!r} is not in the table ({len(self)} entries, "
                f"{self.space.name} on {self.device.backend}); profile that cell"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    # --- building, merging, files -----------------------------------------------------

    @classmethod
    def from_measurements(cls, doc: MeasurementsFile | str | Path, *,
                          statistic: str = "median_ms") -> LookupTable:
        """The table of a ``measurements.json`` (its ``cells``; whole archs are not cells).

        Each cell is taken drift-corrected (`MeasurementsFile.drift_corrected`): scaled to
        the run's typical machine speed by the reference level of its chunk.
        """
        if not isinstance(doc, MeasurementsFile):
            path = Path(doc)
            if not path.is_file():
                raise FileNotFoundError(f"measurements file not found: {path}")
            doc = load_measurements(path)
        return cls([doc.drift_corrected(m) for m in doc.cells],
                   space=SpaceRef(name=doc.kit.space, params=doc.kit.params),
                   device=DeviceRef.of(doc), reference_key=doc.reference_key,
                   reference=doc.reference, statistic=statistic)

    def merge(self, *others: LookupTable) -> LookupTable:
        """A new table holding this one's and ``others``' entries (the merge rule above).

        Raises:
            ValueError: Another table is of another space or device/backend (named).
        """
        entries = list(self.values())
        reference = list(self.reference)
        for other in others:
            self.space.check_same(other.space, "merged LUT")
            self.device.check_same(other.device, "merged LUT")
            if other.statistic != self.statistic:
                raise ValueError(f"merged LUT: statistic {other.statistic} is not "
                                 f"this table's {self.statistic}")
            if other.reference_key == self.reference_key:
                reference.extend(other.reference)
            entries.extend(other.values())
        return LookupTable(entries, space=self.space, device=self.device,
                           reference_key=self.reference_key, reference=reference,
                           statistic=self.statistic)

    def to_file(self) -> LutFile:
        return LutFile(space=self.space, device=self.device, reference_key=self.reference_key,
                       reference=self.reference, statistic=self.statistic,
                       entries=list(self.values()))

    @classmethod
    def from_file(cls, doc: LutFile) -> LookupTable:
        return cls(doc.entries, space=doc.space, device=doc.device,
                   reference_key=doc.reference_key, reference=doc.reference,
                   statistic=doc.statistic)

    def save(self, path: str | Path) -> None:
        """Write the table as versioned JSON (``LutFile``), atomically."""
        write_json(path, self.to_file())

    @classmethod
    def load(cls, path: str | Path) -> LookupTable:
        return cls.from_file(read_json(path, LutFile, expected=LUT_SCHEMA_VERSION,
                                       what="LUT file"))

    # --- using it ---------------------------------------------------------------------

    def noise_floor(self) -> float | None:
        """Robust CV of the reference-cell medians (None with fewer than two)."""
        return robust_cv(self.reference)

    def missing(self, space: Space) -> list[str]:
        """Keys of ``space``'s cells that the table does not hold."""
        return [c.key for c in space.cells() if c.key not in self._entries]

    def require(self, space: Space) -> None:
        """Raise :class:`LookupMissError` naming the first of ``space``'s cells not held."""
        missing = self.missing(space)
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise LookupMissError(f"LUT miss: key {missing[0]!r} is not in the table{more}; "
                                  "profile those cells")

    def latency_ms(self, key: str) -> float:
        """The cell's latency: its ``statistic`` (median or 10th percentile)."""
        return float(getattr(self[key], self.statistic))

    def se_ms(self, key: str) -> float:
        """Standard error of a cell's median: ``1.2533 * cv * median / sqrt(runs)``."""
        m = self[key]
        return 1.2533 * m.cv * self.latency_ms(key) / float(np.sqrt(m.runs))

    def sum_ms(self, space: Space, archs: Iterable) -> np.ndarray:
        """Plain LUT sum per arch (slow reference path; predictors use slot matrices)."""
        return np.array([sum(self.latency_ms(k) for k in space.cell_keys(a)) for a in archs],
                        dtype=np.float64)
