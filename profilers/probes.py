"""The probes a profiling run times beside the kit, and what they say about the machine.

The reference cell is timed after every round (its medians are the run's noise floor and
each chunk's level for drift correction); a whole arch of the kit is timed at the start
and end of every chunk, since other load can slow a whole arch (weights beyond the caches)
while the small cell runs as fast as ever. A record taken while either probe ran well
above its quietest level in the run was taken on a slow machine.

Board-side like :mod:`profilers.runner`: the standard library, numpy and pydantic only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from profilers.base import Runner
from profilers.errors import ModelLoadError, ProfilerError
from profilers.formats import KitEntry, KitManifest, Measurement, MeasurementsFile
from profilers.protocol import ReferenceProbe

__all__ = [
    "Loader",
    "Probes",
    "arch_probe",
    "pick_reference",
    "probe_entry",
    "quietest_levels",
    "reference_entry",
    "slow_entries",
    "slowness",
]

Loader = Callable[[KitEntry], Runner]


@dataclass
class Probes:
    """The reference cell, timed after every round, and the whole-arch probe, timed at the
    start and end of every chunk (None when the kit has no arch)."""

    cell: ReferenceProbe
    arch: ReferenceProbe | None


def probe_entry(manifest: KitManifest, existing: MeasurementsFile | None) -> KitEntry | None:
    """The kit's first arch, or the one a resumed file used (None before probes existed)."""
    if existing is not None and existing.count():
        key = existing.probe_key
        return next((e for e in manifest.entries if e.key == key), None)
    return next((e for e in manifest.entries if e.kind == "arch"), None)


def arch_probe(entry: KitEntry | None, load: Loader) -> ReferenceProbe | None:
    try:
        return ReferenceProbe(load(entry)) if entry is not None else None
    except ModelLoadError:
        return None  # reported, with what was measured before it, when its chunk loads


def reference_entry(
    manifest: KitManifest, existing: MeasurementsFile | None, wanted: str | None, load: Loader
) -> KitEntry:
    key = existing.reference_key if existing is not None else wanted
    entries = {entry.key: entry for entry in manifest.entries}
    if key is None:
        cells = [entry for entry in manifest.entries if entry.kind == "cell"]
        return pick_reference(cells or manifest.entries, load)
    if key not in entries:
        raise ProfilerError(f"reference key {key!r} is not in the kit")
    return entries[key]


# The reference is timed after every round, so it should be long enough for its median
# to be steady and short enough to cost little: about 2 ms (a 0.2 ms cell was bimodal).
REFERENCE_TARGET_MS = 2.0
REFERENCE_CANDIDATES = 12


def pick_reference(entries: Sequence[KitEntry], load: Loader) -> KitEntry:
    """The candidate (evenly spread over ``entries``) whose quick median is nearest 2 ms."""
    step = max(1, len(entries) // REFERENCE_CANDIDATES)
    best, best_distance = entries[0], math.inf
    for entry in entries[::step][:REFERENCE_CANDIDATES]:
        try:
            runner = load(entry)
        except ModelLoadError:
            continue  # reported, with what was measured before it, when its chunk loads
        prepared = runner.prepare(runner.example_input())
        runner.run(prepared)
        median = float(np.median([runner.time_ms(prepared) for _ in range(3)]))
        # Distance on a log scale: 1 ms and 4 ms are equally far from 2 ms.
        distance = abs(math.log(max(median, 1e-6) / REFERENCE_TARGET_MS))
        if distance < best_distance:
            best, best_distance = entry, distance
    return best


def quietest_levels(doc: MeasurementsFile) -> tuple[float | None, float | None]:
    """The lowest reference-cell and whole-arch-probe levels of any record of the run."""
    records = (*doc.cells, *doc.archs)
    cell = [m.reference_ms for m in records if m.reference_ms is not None]
    arch = [m.probe_ms for m in records if m.probe_ms is not None]
    return (min(cell) if cell else None), (min(arch) if arch else None)


def slowness(m: Measurement, quietest: tuple[float | None, float | None]) -> float:
    """How much slower the machine was for ``m`` than at its quietest: the larger of the
    two probes' ratios (1.0: as quiet as ever; a record without levels counts as quiet)."""
    ratios = [
        level / low
        for level, low in ((m.reference_ms, quietest[0]), (m.probe_ms, quietest[1]))
        if level is not None and low is not None
    ]
    return max(ratios, default=1.0)


def slow_entries(
    manifest: KitManifest,
    doc: MeasurementsFile,
    quietest: tuple[float | None, float | None],
    slow_above: float,
) -> list[KitEntry]:
    """Kit entries whose record was taken while either probe was more than ``slow_above``
    slower than at ``quietest`` (`quietest_levels` of the run)."""
    slow = {
        m.key for m in (*doc.cells, *doc.archs) if slowness(m, quietest) > 1 + slow_above
    }
    return [entry for entry in manifest.entries if entry.key in slow]
