"""Fixtures: a real profiling run of a small nb201 space, and a simulated mbv2 device.

The nb201 run is the real pipeline (kit from models/, ONNX, onnxruntime, the board
runner) at a size that takes seconds. The simulated device gives mbv2 measurements with
a known ground truth (cell latencies from FLOPs, whole archs = LUT sum + overhead + a
per-SE penalty), so the fitted numbers can be checked exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from latency import Samples, SpaceRef
from latency.features import cell_flops
from profilers.formats import (
    BackendSettings,
    HostInfo,
    KitRef,
    Measurement,
    MeasurementsFile,
    ProtocolSettings,
    save_measurements,
)
from spaces import Space, get_space
from tests.conftest import SMALL_PARAMS


@dataclass
class Profile:
    dir: Path
    kit: Path
    measurements: Path


@pytest.fixture(scope="session")
def nb201_profile(tmp_path_factory: pytest.TempPathFactory) -> Profile:
    """nb201 (small) profiled for real on onnxruntime: 13 cells + 12 whole archs."""
    from models.kit import make_kit
    from profilers import runner

    out = tmp_path_factory.mktemp("nb201-profile")
    space = get_space("nb201", **SMALL_PARAMS["nb201"])
    make_kit(space, "onnx", out / "kit.zip", archs=12, seed=0)
    code = runner.main(["run", str(out / "kit.zip"), "--backend", "onnxruntime",
                        "--runs", "10", "--rounds", "2", "-o", str(out / "measurements.json"),
                        "--quiet"])
    assert code == 0
    return Profile(out, out / "kit.zip", out / "measurements.json")


MBV2 = {"resolution": 224, "width": 1.0, "classes": 1000}
HOST = HostInfo(cpu="Simulated CPU", cores=1, machine="x86_64", os="sim", python="3.11")


def _record(key: str, kind: str, ms: float, *, runs: int = 60, cv: float = 0.02,
            backend: str = "onnxruntime") -> Measurement:
    return Measurement(key=key, kind=kind, backend=backend, backend_version="1.0",
                       device="CPU", threads=1, precision="fp32", median_ms=ms,
                       p10_ms=ms * 0.97, p90_ms=ms * 1.03, mean_ms=ms, cv=cv, runs=runs,
                       host=HOST, timestamp=datetime(2025, 1, 1, tzinfo=UTC))


def simulated_cell_ms(space: Space, cell) -> float:
    """The simulated device: 0.02 ms per cell call + 1 ms per GFLOP, +30% for h-swish."""
    ms = 0.02 + cell_flops(space.name, cell) / 1e9
    return ms * (1.3 if "hswish" in cell.op else 1.0)


def simulated_arch_ms(space: Space, archs, rng: np.random.Generator) -> np.ndarray:
    """Whole archs: 0.9 x LUT sum + 0.5 ms + 0.05 ms per SE block, with 1% noise."""
    out = []
    for arch in archs:
        cells = space.fixed_cells() + [c for i, op in enumerate(arch.ops)
                                       for c in space.slot_cells(i, op)]
        lut = sum(simulated_cell_ms(space, c) for c in cells)
        se = sum("-se" in op for op in arch.ops)
        out.append((0.9 * lut + 0.5 + 0.05 * se) * (1 + 0.01 * rng.standard_normal()))
    return np.array(out)


def simulated_measurements(*, backend: str = "onnxruntime", params: dict | None = None,
                           drop: int = 0) -> MeasurementsFile:
    """The simulated device's measurements of every mbv2 cell (less the first ``drop``)."""
    params = params or MBV2
    space = get_space("mbv2", **params)
    cells = [_record(c.key, c.kind, simulated_cell_ms(space, c), backend=backend)
             for c in space.cells()[drop:]]
    return MeasurementsFile(
        kit=KitRef(space="mbv2", params=params, format="onnx", manifest_sha256="0" * 64),
        settings=BackendSettings(backend=backend, backend_version="1.0", device="CPU",
                                 threads=1, precision="fp32"),
        protocol=ProtocolSettings(), host=HOST, reference_key=cells[0].key,
        reference=[1.0, 1.02, 0.98, 1.01, 0.99, 1.0], cells=cells, complete=True)


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """measurements.json of the simulated device, plus train.json/held.json/train.csv."""
    from latency import save_samples

    out = tmp_path_factory.mktemp("sim")
    doc = simulated_measurements()
    save_measurements(out / "measurements.json", doc)
    space = get_space("mbv2", **MBV2)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(120)]
    ms = simulated_arch_ms(space, archs, rng)
    ref = SpaceRef.of(space)
    from latency import DeviceRef

    device = DeviceRef.of(doc)
    save_samples(out / "train.json", Samples(ref, archs[:20], ms[:20], device, doc.reference))
    save_samples(out / "held.json", Samples(ref, archs[20:], ms[20:], device, doc.reference))
    save_samples(out / "train.csv", Samples(ref, archs[:20], ms[:20]))
    save_samples(out / "held.csv", Samples(ref, archs[20:], ms[20:]))
    return out
