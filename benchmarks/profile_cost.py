"""Profile cost, repeatability and the noise protocol's effect of the board runner (issue 3).

Measures, on each backend available here (onnxruntime, openvino, tflite), 1 thread, the
default ``mbv2`` space at 224x224:

1. **Profile cost**: seconds to build the kit (``models.kit.make_kit``) and to measure every
   cell with the board runner (``profilers.runner.main``, default protocol), per cell, and
   whether a full LUT is measured in under 10 minutes. A backend given a subset of cells
   (``--cells N``, a seeded random sample; TFLite by default, its export takes ~5 s a cell)
   is extrapolated linearly to the space's full cell count, labelled so.
2. **Repeatability**: the same kit measured by two separate runner invocations; for cells
   whose median is above 0.5 ms (mean of the two runs), the median and p90 of
   ``|a - b| / mean(a, b)`` and the share within 5%, raw and with each run divided by the
   median of its own reference-cell medians (``reference`` in measurements.json).
3. **Noise protocol**: on one backend and one subset of cells, two runs with every cell timed
   in one block (``--rounds 1``) and two with the default interleaved rounds, in the order
   block, rounds, block, rounds, so both pairs span the same drift of the machine.

Kits are models in a temporary folder (``--workdir`` keeps them and the measurements); the
LUT is the cells (no whole archs are added). Prints one table per section and writes
``benchmarks/results/profile_cost.json``. Run from the repository root::

    .venv/bin/python benchmarks/profile_cost.py --quick     # ~2 minutes, small subsets
    .venv/bin/python benchmarks/profile_cost.py             # ~15 minutes
    .venv/bin/python benchmarks/profile_cost.py --cells 60 --backends onnxruntime tflite
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.kit import make_kit
from profilers import runner
from profilers.base import list_backends
from profilers.formats import HostInfo, MeasurementsFile, ProtocolSettings, load_measurements
from service.cli.profile_cmd import KIT_FORMAT
from spaces import Cell, Space, get_space
from spaces.base import RestrictedSpace

BACKENDS = ("onnxruntime", "openvino", "tflite")
MIN_MS = 0.5  # repeatability is judged on cells slower than this
TARGET_S = 600.0  # a full LUT in under 10 minutes
_T0 = time.perf_counter()


class CellSubset(RestrictedSpace):
    """``parent`` with ``cells()`` cut to ``keep``, so ``make_kit`` writes only those cells."""

    def __init__(self, parent: Space, keep: Sequence[Cell]) -> None:
        super().__init__(parent, {})
        self._keep = list(keep)

    def cells(self) -> list[Cell]:
        return list(self._keep)


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def subset(space: Space, n: int | None, seed: int) -> Space:
    """A seeded random sample of ``n`` cells of ``space`` in space order (all: ``space``)."""
    cells = space.cells()
    if n is None or n >= len(cells):
        return space
    picked = np.sort(np.random.default_rng(seed).choice(len(cells), size=n, replace=False))
    return CellSubset(space, [cells[i] for i in picked])


class Kits:
    """Builds kits with ``make_kit``, once per (format, cells): OpenVINO reuses the ONNX kit."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.built: dict[tuple[str, tuple[str, ...]], tuple[Path, float]] = {}

    def get(self, space: Space, fmt: str) -> tuple[Path, float, bool]:
        """(kit path, seconds it took to build, whether it was built earlier)."""
        keys = tuple(cell.key for cell in space.cells())
        if (fmt, keys) in self.built:
            return (*self.built[(fmt, keys)], True)
        path = self.folder / f"kit-{fmt}-{len(keys)}-{len(self.built)}.zip"
        log(f"building {fmt} kit of {len(keys)} cells")
        start = time.perf_counter()
        make_kit(space, fmt, path, archs=0, progress=_kit_progress)
        seconds = time.perf_counter() - start
        self.built[(fmt, keys)] = (path, seconds)
        return path, seconds, False


def _kit_progress(done: int, total: int, key: str) -> None:
    if done % 50 == 0 or done == total:
        log(f"  kit {done}/{total}")


def measure(kit: Path, backend: str, out: Path, *, threads: int, rounds: int | None = None,
            verbose: bool = False) -> tuple[float, MeasurementsFile]:
    """One runner invocation (a fresh output file); returns its wall seconds and its file."""
    argv = ["run", str(kit), "--backend", backend, "--threads", str(threads), "-o", str(out)]
    if rounds is not None:
        argv += ["--rounds", str(rounds)]
    if not verbose:
        argv.append("--quiet")
    log(f"measuring {kit.name} on {backend}" + (f", rounds {rounds}" if rounds else ""))
    start = time.perf_counter()
    code = runner.main(argv)
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"error: the runner exited with {code} ({' '.join(argv)})")
    return seconds, load_measurements(out)


def agreement(a: MeasurementsFile, b: MeasurementsFile, *, normalise: bool) -> dict[str, Any]:
    """Relative differences of the medians of the cells above ``MIN_MS`` in two runs.

    With ``normalise``, each run's medians are first divided by the median of that run's
    reference-cell medians (which absorbs a uniform slowdown of the machine between runs).
    """
    ma = {m.key: m.median_ms for m in a.cells}
    mb = {m.key: m.median_ms for m in b.cells}
    keys = [k for k in ma if k in mb and (ma[k] + mb[k]) / 2 > MIN_MS]
    x = np.array([ma[k] for k in keys])
    y = np.array([mb[k] for k in keys])
    if normalise:
        x, y = x / np.median(a.reference), y / np.median(b.reference)
    if not keys:
        return {"cells": 0, "median": None, "p90": None, "within_5pct": None}
    rel = np.abs(x - y) / ((x + y) / 2)
    return {"cells": len(keys), "median": float(np.median(rel)),
            "p90": float(np.percentile(rel, 90)), "within_5pct": float(np.mean(rel <= 0.05))}


def ref_drift(a: MeasurementsFile, b: MeasurementsFile) -> float:
    """Run b's reference median over run a's, minus 1 (the machine's drift between runs)."""
    return float(np.median(b.reference) / np.median(a.reference) - 1)


def median_cv(doc: MeasurementsFile) -> float:
    return float(np.median([m.cv for m in doc.cells]))


def cost_and_repeatability(args: argparse.Namespace, space: Space, kits: Kits, work: Path,
                           backend: str) -> dict[str, Any]:
    """Sections 1 and 2 for one backend: build, measure twice, compare."""
    full = len(space.cells())
    n = args.cells
    if n is None and backend == "tflite":
        n = args.tflite_cells or None  # 0: every cell
    chosen = subset(space, n, args.seed)
    cells = len(chosen.cells())
    fmt = KIT_FORMAT[backend]
    kit, build_s, shared = kits.get(chosen, fmt)
    measure_s, run_a = measure(kit, backend, work / f"{backend}-a.json", threads=args.threads,
                               verbose=args.verbose)
    _, run_b = measure(kit, backend, work / f"{backend}-b.json", threads=args.threads,
                       verbose=args.verbose)
    scale = full / cells
    full_measure_s = measure_s * scale
    return {
        "backend": backend, "version": run_a.settings.backend_version, "kit_format": fmt,
        "kit_shared": shared, "cells": cells, "full_cells": full, "extrapolated": cells < full,
        "kit_build_s": build_s, "measure_s": measure_s,
        "kit_build_s_per_cell": build_s / cells, "measure_s_per_cell": measure_s / cells,
        "full_lut_kit_build_s": build_s * scale, "full_lut_measure_s": full_measure_s,
        "full_lut_total_s": (build_s + measure_s) * scale,
        "measure_under_10_min": full_measure_s < TARGET_S,
        "repeatability": {
            "raw": agreement(run_a, run_b, normalise=False),
            "reference_normalised": agreement(run_a, run_b, normalise=True),
            "reference_key": run_a.reference_key,
            "reference_drift_b_over_a": ref_drift(run_a, run_b),
            "median_cv": [median_cv(run_a), median_cv(run_b)],
        },
    }


def noise_protocol(args: argparse.Namespace, space: Space, kits: Kits,
                   work: Path) -> dict[str, Any]:
    """Section 3: one block per cell (rounds 1) against interleaved rounds, runs ABAB."""
    backend = args.noise_backend
    chosen = subset(space, args.noise_cells, args.seed + 1)
    kit, _, _ = kits.get(chosen, KIT_FORMAT[backend])
    runs: dict[str, list[tuple[float, MeasurementsFile]]] = {"block": [], "rounds": []}
    for repeat in range(2):
        for name, rounds in (("block", 1), ("rounds", None)):
            out = work / f"noise-{backend}-{name}-{repeat}.json"
            runs[name].append(measure(kit, backend, out, threads=args.threads, rounds=rounds,
                                      verbose=args.verbose))
    result: dict[str, Any] = {"backend": backend, "cells": len(chosen.cells()),
                              "default_rounds": ProtocolSettings().rounds, "protocols": {}}
    for name, pair in runs.items():
        (sa, a), (sb, b) = pair
        result["protocols"][name] = {
            "rounds": a.protocol.rounds, "measure_s": [sa, sb],
            "raw": agreement(a, b, normalise=False),
            "reference_normalised": agreement(a, b, normalise=True),
            "median_cv": [median_cv(a), median_cv(b)],
        }
    block, rounds = (result["protocols"][k]["raw"]["median"] for k in ("block", "rounds"))
    result["rounds_over_block_median_diff"] = rounds / block if block and rounds is not None \
        else None
    return result


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Plain text, columns aligned (numbers right, text left)."""
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str], raw: Sequence[object]) -> str:
        parts = [v.rjust(w) if isinstance(x, int | float) else v.ljust(w)
                 for v, w, x in zip(values, widths, raw, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(list(headers), headers), "  ".join("-" * w for w in widths)]
    out += [line(c, r) for c, r in zip(cells, rows, strict=True)]
    return "\n".join(out)


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return "-" if value is None else str(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def report(results: dict[str, Any]) -> str:
    cost = results["backends"]
    rows1 = [[r["backend"], r["kit_format"] + (" (shared)" if r["kit_shared"] else ""),
              r["cells"], r["kit_build_s"], r["measure_s"], r["measure_s_per_cell"],
              r["full_cells"], r["full_lut_measure_s"], r["full_lut_total_s"],
              r["measure_under_10_min"],
              f"extrapolated from {r['cells']}" if r["extrapolated"] else "measured"]
             for r in cost]
    for r in results["skipped"]:
        rows1.append([r["backend"], "-", "-", "-", "-", "-", "-", "-", "-", "-",
                      f"skipped: {r['reason']}"])
    out = ["1. Profile cost (1 thread, default protocol; seconds)",
           table(["backend", "kit", "cells", "build_s", "measure_s", "s/cell", "full cells",
                  "full measure_s", "full total_s", "<10 min", "basis"], rows1)]
    rows2 = []
    for r in cost:
        rep = r["repeatability"]
        raw, norm = rep["raw"], rep["reference_normalised"]
        rows2.append([r["backend"], raw["cells"], _pct(raw["median"]), _pct(raw["p90"]),
                      _pct(raw["within_5pct"]), _pct(norm["median"]), _pct(norm["p90"]),
                      _pct(norm["within_5pct"]), _pct(rep["reference_drift_b_over_a"])])
    out += ["", f"2. Repeatability: two runs of the same kit, cells > {MIN_MS} ms, |a-b|/mean "
            "(norm: each run / median of its reference-cell medians)",
            table(["backend", "cells", "median", "p90", "<=5%", "norm median", "norm p90",
                   "norm <=5%", "ref drift"], rows2)]
    noise = results.get("noise")
    if noise:
        rows3 = [[name, p["rounds"], p["raw"]["cells"], _pct(p["raw"]["median"]),
                  _pct(p["raw"]["p90"]), _pct(p["raw"]["within_5pct"]),
                  _pct(p["reference_normalised"]["median"]), _pct(float(np.mean(p["median_cv"]))),
                  float(np.mean(p["measure_s"]))]
                 for name, p in noise["protocols"].items()]
        ratio = noise["rounds_over_block_median_diff"]
        out += ["", f"3. Noise protocol on {noise['backend']}, {noise['cells']} cells, runs "
                "block/rounds/block/rounds: spread of medians between the two runs",
                table(["protocol", "rounds", "cells", "median", "p90", "<=5%", "norm median",
                       "cv (within)", "measure_s"], rows3),
                f"rounds / block median |a-b|: {_fmt(ratio)}"]
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--cells", type=int, help="random subset of N cells on every backend, "
                        "extrapolated (default: all cells; tflite: --tflite-cells)")
    parser.add_argument("--tflite-cells", type=int, default=40,
                        help="tflite subset when --cells is not given (0: all; default 40)")
    parser.add_argument("--noise-cells", type=int, default=80,
                        help="cells of the noise protocol section (default 80; 0 skips it)")
    parser.add_argument("--noise-backend", choices=BACKENDS, default="onnxruntime")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="seed of the cell subsets")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 10 cells per backend, 10 in the noise section")
    parser.add_argument("--workdir", type=Path, help="keep kits and measurements here")
    parser.add_argument("--verbose", action="store_true", help="show the runner's progress")
    parser.add_argument("-o", "--output", type=Path,
                        default=Path(__file__).parent / "results" / "profile_cost.json")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.cells = args.cells or 10
        args.noise_cells = min(args.noise_cells, 10) if args.noise_cells else 0
    for name in ("cells", "tflite_cells", "noise_cells"):
        value = getattr(args, name)
        if value is not None and value < (1 if name == "cells" else 0):
            raise SystemExit(f"error: --{name.replace('_', '-')} must be >= 1, got {value}")
    space = get_space("mbv2", resolution=args.resolution)
    infos = {info.name: info for info in list_backends()}
    results: dict[str, Any] = {
        "benchmark": "profile_cost", "timestamp": datetime.now(UTC).isoformat(),
        "argv": sys.argv[1:] if argv is None else list(argv),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "host": HostInfo.current().model_dump(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__,
                     **{n: i.version for n, i in infos.items() if i.available}},
        "space": {"name": space.name, "params": space.params, "cells": len(space.cells())},
        "protocol": ProtocolSettings().model_dump(), "min_ms": MIN_MS,
        "normalisation": "each run's cell medians / median of that run's reference medians",
        "backends": [], "skipped": [],
    }
    with tempfile.TemporaryDirectory(prefix="hwnas-profile-cost-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        kits = Kits(work)
        for backend in args.backends:
            if not infos[backend].available:
                log(f"skipping {backend}: {infos[backend].reason}")
                results["skipped"].append({"backend": backend, "reason": infos[backend].reason})
                continue
            results["backends"].append(cost_and_repeatability(args, space, kits, work, backend))
        if args.noise_cells and infos[args.noise_backend].available:
            results["noise"] = noise_protocol(args, space, kits, work)
    results["wall_s"] = time.perf_counter() - _T0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))
    print(f"\nwall {results['wall_s']:.0f} s; wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
