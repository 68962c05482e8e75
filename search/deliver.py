"""The search's deliverable: the winner exported to every format and timed on the real runtimes.

The winner is built at the deployment resolution (the device profile's), exported to
ONNX, TFLite fp32 and TFLite int8 (and OpenVINO IR when a target runs OpenVINO), each file
checked against torch's output, and each target whose runtime runs on this machine times
its own file with the profilers' measurement protocol, so the report holds the measured
latency next to the predicted one.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from profilers.device import DeviceProfile
from spaces import Arch, Space

# Which exported file each backend runs, by precision.
RUNS = {("onnxruntime", "fp32"): "onnx", ("openvino", "fp32"): "onnx",
        ("tflite", "fp32"): "tflite", ("tflite", "int8"): "tflite-int8",
        ("onnxruntime", "int8"): "onnx", ("openvino", "int8"): "onnx"}
def calibration_images(data: Any, resolution: int, *, seed: int, count: int) -> np.ndarray:
    """`count` training images of a `search.data.Dataset` (seeded pick, in order) at the
    deployment resolution: for BN statistics and int8 ranges."""
    import torch

    from .data import to_resolution

    rng = np.random.default_rng(seed)
    pick = rng.choice(len(data.x_train), size=min(count, len(data.x_train)), replace=False)
    x = to_resolution(data.x_train[torch.from_numpy(np.sort(pick))], resolution)
    return x.numpy().astype(np.float32)


def export_winner(space: Space, arch: Arch, out: Path, *, formats: Sequence[str],
                  calibration: np.ndarray, seed: int = 0,
                  weights: dict[str, Any] | None = None,
                  recalibrate: bool = True) -> dict[str, dict[str, Any]]:
    """Build `arch` in `space`, export it into `out`, check each file against torch.

    `calibration` (N, C, H, W) at the deployment resolution re-estimates the BN statistics
    and calibrates int8. `weights` are trained weights (a `state_dict` of the same arch,
    trained at the data's resolution: every weight's shape is independent of the input
    size); None exports the initialised net, for latency and deployment checks only.
    With `recalibrate` the BN statistics are re-estimated on `calibration`: for trained
    weights, do it when the deployment resolution differs from the training one (the
    train/test resolution gap is mostly a shift of activation statistics: Touvron et al.,
    "Fixing the train-test resolution discrepancy", NeurIPS 2019); otherwise the
    statistics from training, estimated on many more images, are kept.
    Returns `models.export.check_exported`'s entry per format.
    """
    import torch

    from models import build, recalibrate_bn
    from models.export import calibration_batches, check_exported, export

    torch.manual_seed(seed)
    net = build(space, arch).eval()
    if weights is not None:
        net.load_state_dict(weights)
    batches = calibration_batches(calibration)
    if weights is None or recalibrate:
        recalibrate_bn(net, batches)
    out.mkdir(parents=True, exist_ok=True)
    files = export(net, net.example_input(), out, formats, calibration=batches)
    return check_exported(net, files, calibration[-1:])


def exported_accuracy(out: Path, files: dict[str, dict[str, Any]], x: Any, y: Any, *,
                      resolution: int, threads: int = 1) -> dict[str, float]:
    """Top-1 accuracy of each exported file, run on its own runtime, on (x, y).

    `x` (normalised val images at the data's resolution) is resized to `resolution`
    image by image. Returns accuracy per format.
    """
    from models.export import load_exported

    from .data import to_resolution

    runs = {fmt: load_exported(out / entry["path"], threads=threads)
            for fmt, entry in files.items()}
    correct = dict.fromkeys(runs, 0)
    for i in range(len(y)):
        image = to_resolution(x[i:i + 1], resolution).numpy()
        for fmt, run in runs.items():
            correct[fmt] += int(run(image).argmax() == int(y[i]))
    return {fmt: c / len(y) for fmt, c in correct.items()}


def measure_exported(out: Path, devices: Sequence[DeviceProfile], *,
                     profiles: dict[str, Path] | None = None,
                     runs: int = 60) -> dict[str, dict[str, Any]]:
    """Time each device's own exported file here, where its runtime is installed.

    Devices whose runtime, device or delegate is not on this machine are reported with
    the reason instead of a latency. All files are timed in interleaved rounds.

    `profiles` maps a device to the folder where this machine profiled it (`kit.zip`,
    `measurements.json`): its reference cell is timed beside the file, and the file's
    median is also given at the profiling run's machine speed (`drift_corrected_ms`),
    since this shared machine's speed drifts by tens of percent between minutes and the
    prediction stands for the speed the LUT was measured at.
    """
    from models.export import FILE_NAMES
    from profilers.base import get_backend
    from profilers.errors import ProfilerError
    from profilers.formats import ProtocolSettings
    from profilers.protocol import measure_many

    runners, result, refs = {}, {}, {}
    scratch = Path(tempfile.mkdtemp(prefix="hwnas-ref-"))
    for dev in devices:
        fmt = RUNS.get((dev.backend, dev.precision))
        path = out / FILE_NAMES[fmt] if fmt else None
        if path is None or not path.exists():
            result[dev.name] = {"measured": False,
                                "reason": f"no exported file for {dev.backend} {dev.precision}"}
            continue
        backend = get_backend(dev.backend)
        ok, why = backend.available()
        if not ok:
            result[dev.name] = {"measured": False, "reason": why}
            continue
        try:
            runners[dev.name] = backend.load(
                path, threads=dev.threads, precision=dev.precision if fmt != "tflite-int8"
                else "int8", device=dev.device,
                delegate=Path(dev.delegate) if dev.delegate else None)
        except ProfilerError as err:
            result[dev.name] = {"measured": False, "reason": str(err)}
            continue
        result[dev.name] = {"measured": True, "file": path.name}
        folder = (profiles or {}).get(dev.name)
        if folder is not None:
            ref = profiling_reference(folder, scratch)
            if ref is not None:
                refs[dev.name] = ref[1:]
                runners[f"{dev.name}#reference"] = backend.load(
                    ref[0], threads=dev.threads, precision=dev.precision, device=dev.device)
    if runners:
        settings = ProtocolSettings(runs=runs, min_runs=min(10, runs), rounds=min(20, runs),
                                    remeasure_passes=0)
        stats = measure_many(runners, settings)
        for name, s in stats.items():
            if name.endswith("#reference"):
                continue
            result[name] |= {"median_ms": s.median_ms, "p10_ms": s.p10_ms,
                             "p90_ms": s.p90_ms, "cv": s.cv, "runs": s.runs}
            if name in refs:
                key, profiled_ms = refs[name]
                now_ms = stats[f"{name}#reference"].median_ms
                result[name] |= {"drift_corrected_ms": s.median_ms * profiled_ms / now_ms,
                                 "reference": {"key": key, "profiled_ms": profiled_ms,
                                               "now_ms": now_ms}}
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def profiling_reference(folder: Path, scratch: Path) -> tuple[Path, str, float] | None:
    """The profiling run's reference cell: its file (extracted), key and overall median."""
    from profilers.formats import load_measurements, read_manifest

    kit, measured = folder / "kit.zip", folder / "measurements.json"
    if not kit.exists() or not measured.exists():
        return None
    doc = load_measurements(measured)
    entry = next((e for e in read_manifest(kit).entries if e.key == doc.reference_key), None)
    if entry is None or not doc.reference:
        return None
    with zipfile.ZipFile(kit) as archive:
        path = Path(archive.extract(entry.file, scratch))
    return path, entry.key, sorted(doc.reference)[len(doc.reference) // 2]
