"""A device's latency predictor from this machine: profile its kit here, fit, cache.

`hwnas search --backend onnxruntime` with no device file means "this machine's CPU":
the space's profiling kit is built and measured on the local runtime (cells for the LUT
plus a few whole random archs), a FOX-NAS predictor is fitted on the LUT and the archs,
and everything is cached under one folder per (space parameters, device settings), so
the next search on the same device costs nothing and an interrupted profiling run
resumes where it stopped (the runner's own resume).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.export import TFLITE_GRAPHS
from profilers.device import DeviceProfile
from spaces import Space

Progress = Callable[[float, str], None]

# Whole archs measured beside the cells: enough for the FOX-NAS regression to correct the
# LUT sum (the predictor benchmark's accuracy curve flattens by about 20).
E2E_ARCHS = 24


class ProfilingInterrupted(Exception):
    """The local profiling run was interrupted; its partial output is kept for a resume."""


def cache_dir(root: Path, space: Space, device: DeviceProfile) -> Path:
    """The cache folder of one space (with its parameters) on one device's settings."""
    ident: dict[str, object] = {
        "space": space.name, "params": space.params,
        "device": device.model_dump(exclude={"name", "hardware", "schema_version"})}
    if device.backend == "tflite":  # a kit measured on older TFLite graphs is not reused
        ident["tflite_graphs"] = TFLITE_GRAPHS
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]
    return root / f"{space.name}-{device.backend}-{digest}"


def local_predictor(space: Space, device: DeviceProfile, root: Path, *,
                    archs: int = E2E_ARCHS, progress: Progress | None = None) -> Any:
    """Profile `space` on this machine with `device`'s settings and fit a `fox` predictor.

    Returns the fitted `latency.Predictor` (cached as `predictor.json` in the cache folder).

    Raises:
        ProfilingInterrupted: Ctrl-C during measuring (run again to resume).
        ProfilerError: The backend is not installed here or refuses the kit.
    """
    from latency import LookupTable, get_predictor, load_predictor, samples_from_measurements
    from profilers import runner
    from profilers.formats import load_measurements, read_manifest

    report = progress or (lambda fraction, message: None)
    folder = cache_dir(root, space, device)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "device.json").write_text(device.model_dump_json(indent=2))
    # The fit's file is versioned apart from the measurements: "2" keeps fox predictions
    # within the fitted archs' corrections (latency/predictors/fox.py), so a cache fitted
    # before is refitted from its measurements (instant) instead of reused.
    saved = folder / "predictor-2.json"
    if saved.exists():
        return load_predictor(saved)
    kit = folder / "kit.zip"
    if not kit.exists():
        from models.kit import make_kit

        total = len(space.cells()) + archs

        def kit_step(done: int, _total: int, key: str) -> None:
            report(0.5 * done / total, f"kit {done}/{total} {key}")

        make_kit(space, device.kit_format, kit, archs=archs, seed=0,
                 precision=device.precision, progress=kit_step)
    report(0.5, f"measuring {kit.name} on {device.backend}")
    argv = ["run", str(kit), "--backend", device.backend, "--threads", str(device.threads),
            "-o", str(folder / "measurements.json")]
    if device.device is not None:
        argv += ["--device", device.device]
    if device.delegate is not None:
        argv += ["--delegate", device.delegate]
    code = runner.main(argv)
    if code == runner.EXIT_INTERRUPTED:
        raise ProfilingInterrupted(f"profiling interrupted; run again to resume ({folder})")
    if code:
        raise ValueError(f"profiling {device.backend} failed (see the error above); "
                         f"partial results in {folder}")
    doc = load_measurements(folder / "measurements.json")
    lut = LookupTable.from_measurements(doc)
    samples = samples_from_measurements(doc, read_manifest(kit))
    predictor = get_predictor("fox").fit(lut=lut, samples=samples)
    predictor.save(saved)
    report(1.0, f"predictor fitted on {len(lut)} cells and {len(samples)} archs")
    return predictor
