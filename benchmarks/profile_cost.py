"""Cost, repeatability and noise protocol of profiling a LUT with the board runner (issue 3).

Each available backend (onnxruntime, openvino, tflite), 1 thread, the ``mbv2`` space at
224x224; kits from ``models.kit.make_kit`` (cells only), measured by ``profilers.runner.main``:

1. **Cost**: seconds to build the kit and to measure it (extraction and loading included),
   per cell; is a full LUT measured in under 10 minutes? A subset (``--cells N``, seeded
   random cells; TFLite by default, ~5 s of export a cell) is extrapolated, labelled so.
2. **Repeatability**: one kit, two runner invocations; over cells above 0.5 ms, median and
   p90 of ``|a - b| / mean(a, b)`` and the share within 5%, raw and normalised (each run's
   medians / the median of that run's reference-cell medians in measurements.json), for
   each cell's median and for its 10th percentile.
3. **Noise protocol**: one subset, runs block, rounds, block, rounds (block: ``--rounds 1``;
   rounds: the default interleaving), so both pairs span the same drift.

Prints one table per section, writes ``benchmarks/results/profile_cost.json``::

    .venv/bin/python benchmarks/profile_cost.py --quick   # ~2 minutes: 10 cells per backend
    .venv/bin/python benchmarks/profile_cost.py           # ~15 minutes
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from _report import arguments, host_facts, utc_now, write_report

from models.kit import make_kit
from profilers import runner
from profilers.base import list_backends
from profilers.formats import MeasurementsFile, ProtocolSettings, load_measurements
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


def subset(space: Space, n: int | None, seed: int) -> Space:
    """A seeded random sample of ``n`` cells of ``space``, in space order (None: all)."""
    cells = space.cells()
    if n is None or n >= len(cells):
        return space
    picked = np.sort(np.random.default_rng(seed).choice(len(cells), size=n, replace=False))
    return CellSubset(space, [cells[i] for i in picked])


def log(message: str, stream: TextIO | None = None) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {message}", file=stream or sys.stderr, flush=True)


@contextmanager
def chatter_to(path: Path | None) -> Iterator[TextIO]:
    """File descriptors 1 and 2 (exporters log there from Python and C++) into ``path``.

    Yields a stream on the real stderr for progress; ``path`` None redirects nothing.
    """
    if path is None:
        yield sys.stderr
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with path.open("ab") as sink, os.fdopen(os.dup(saved[1]), "w") as console:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield console
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)


class Kits:
    """Builds kits with ``make_kit`` once per (format, cells): OpenVINO reuses the ONNX kit."""

    def __init__(self, folder: Path, *, verbose: bool) -> None:
        self.folder, self.verbose = folder, verbose
        self.built: dict[tuple[str, tuple[str, ...]], tuple[Path, float]] = {}

    def get(self, space: Space, fmt: str) -> tuple[Path, float, bool]:
        """(kit, seconds its build took, whether it was built for an earlier backend)."""
        keys = tuple(cell.key for cell in space.cells())
        if (fmt, keys) in self.built:
            return (*self.built[(fmt, keys)], True)
        path = self.folder / f"kit-{fmt}-{len(keys)}-{len(self.built)}.zip"
        log(f"building {fmt} kit of {len(keys)} cells")
        with chatter_to(None if self.verbose else self.folder / "export.log") as out:

            def progress(done: int, total: int, key: str) -> None:
                if done % 50 == 0 or done == total:
                    log(f"  kit {done}/{total}", out)

            start = time.perf_counter()
            make_kit(space, fmt, path, archs=0, progress=progress)
            self.built[(fmt, keys)] = (path, time.perf_counter() - start)
        return (*self.built[(fmt, keys)], False)


def measure(kit: Path, backend: str, out: Path, args: argparse.Namespace,
            rounds: int | None = None) -> tuple[float, MeasurementsFile]:
    """One runner invocation into a new file; its wall seconds and its measurements."""
    argv = ["run", str(kit), "--backend", backend, "--threads", str(args.threads),
            "-o", str(out), "--no-resume"]  # an old output would be resumed, not re-measured
    argv += ["--rounds", str(rounds)] if rounds is not None else []
    argv += ["--chunk", str(args.chunk)] if args.chunk is not None else []
    argv += [] if args.verbose else ["--quiet"]
    log(f"measuring {kit.name} on {backend}" + (f", rounds {rounds}" if rounds else ""))
    start = time.perf_counter()
    code = runner.main(argv)
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"error: the runner exited with {code} ({' '.join(argv)})")
    return seconds, load_measurements(out)


def slow_keys(*docs: MeasurementsFile) -> list[str]:
    """Cells whose median, averaged over ``docs``, is above ``MIN_MS``."""
    medians = [{m.key: m.median_ms for m in doc.cells} for doc in docs]
    return [k for k in medians[0] if np.mean([m[k] for m in medians]) > MIN_MS]


def agreement(a: MeasurementsFile, b: MeasurementsFile, keys: Sequence[str], *,
              normalise: bool, statistic: str = "median_ms") -> dict[str, Any]:
    """``|a - b| / mean(a, b)`` of ``statistic`` of ``keys`` in two runs: median, p90, <= 5%.

    With ``normalise``, each run's values are first divided by the median of that run's
    reference-cell medians (which absorbs a uniform slowdown of the machine between runs).
    """
    if not keys:
        return {"cells": 0, "median": None, "p90": None, "within_5pct": None}
    ma, mb = ({m.key: getattr(m, statistic) for m in doc.cells} for doc in (a, b))
    x, y = np.array([ma[k] for k in keys]), np.array([mb[k] for k in keys])
    if normalise:
        x, y = x / np.median(a.reference), y / np.median(b.reference)
    rel = np.abs(x - y) / ((x + y) / 2)
    return {"cells": len(keys), "median": float(np.median(rel)),
            "p90": float(np.percentile(rel, 90)), "within_5pct": float(np.mean(rel <= 0.05))}


def compare(a: MeasurementsFile, b: MeasurementsFile, keys: Sequence[str]) -> dict[str, Any]:
    """Agreement of two runs (raw and normalised) and facts about each run."""
    return {
        "raw": agreement(a, b, keys, normalise=False),
        "reference_normalised": agreement(a, b, keys, normalise=True),
        # The 10th percentile: other load on a shared machine only adds time, so the fast
        # end of a cell's runs moves less between runs than its median (latency.lut).
        "p10_raw": agreement(a, b, keys, normalise=False, statistic="p10_ms"),
        "p10_reference_normalised": agreement(a, b, keys, normalise=True, statistic="p10_ms"),
        "reference_key": a.reference_key,
        "reference_drift_b_over_a": float(np.median(b.reference) / np.median(a.reference) - 1),
        "median_cv": [float(np.median([m.cv for m in d.cells])) for d in (a, b)],
        "remeasured": [float(np.mean([m.runs > d.protocol.runs for m in d.cells]))
                       for d in (a, b)],
    }


def cost_and_repeatability(args: argparse.Namespace, space: Space, kits: Kits, work: Path,
                           backend: str) -> dict[str, Any]:
    """Sections 1 and 2 for one backend: build (or reuse) the kit, measure it twice."""
    n = args.cells
    if n is None and backend == "tflite":
        n = args.tflite_cells or None  # 0: every cell
    chosen = subset(space, n, args.seed)
    cells, full = len(chosen.cells()), len(space.cells())
    kit, build_s, shared = kits.get(chosen, KIT_FORMAT[backend])
    measure_s, run_a = measure(kit, backend, work / f"{backend}-a.json", args)
    _, run_b = measure(kit, backend, work / f"{backend}-b.json", args)
    scale = full / cells
    return {
        "backend": backend, "version": run_a.settings.backend_version,
        "kit_format": KIT_FORMAT[backend], "kit_shared": shared, "cells": cells,
        "full_cells": full, "extrapolated": cells < full, "kit_build_s": build_s,
        "measure_s": measure_s, "measure_s_per_cell": measure_s / cells,
        "full_lut_kit_build_s": build_s * scale, "full_lut_measure_s": measure_s * scale,
        "full_lut_total_s": (build_s + measure_s) * scale,
        "measure_under_10_min": measure_s * scale < TARGET_S,
        "repeatability": compare(run_a, run_b, slow_keys(run_a, run_b)),
    }


def noise_protocol(args: argparse.Namespace, space: Space, kits: Kits,
                   work: Path) -> dict[str, Any]:
    """Section 3: one block per cell (``--rounds 1``) against interleaved rounds, ABAB."""
    backend = args.noise_backend
    chosen = subset(space, args.noise_cells, args.seed + 1)
    kit, _, _ = kits.get(chosen, KIT_FORMAT[backend])
    runs: dict[str, list[tuple[float, MeasurementsFile]]] = {"block": [], "rounds": []}
    for repeat in range(2):
        for name, rounds in (("block", 1), ("rounds", None)):
            out = work / f"noise-{backend}-{name}-{repeat}.json"
            runs[name].append(measure(kit, backend, out, args, rounds))
    keys = slow_keys(*(doc for pair in runs.values() for _, doc in pair))
    protocols = {name: {"rounds": a.protocol.rounds, "measure_s": [sa, sb], **compare(a, b, keys)}
                 for name, ((sa, a), (sb, b)) in runs.items()}
    block, rounds = (protocols[k]["raw"]["median"] for k in ("block", "rounds"))
    return {"backend": backend, "cells": len(chosen.cells()), "protocols": protocols,
            "rounds_over_block_median_diff": rounds / block if block else None}


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Plain text, columns aligned (numbers right, text left)."""
    text = [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) for i, h in enumerate(headers)]

    def line(values: Sequence[str], raw: Sequence[object]) -> str:
        return "  ".join(v.rjust(w) if isinstance(x, int | float) else v.ljust(w)
                         for v, w, x in zip(values, widths, raw, strict=True)).rstrip()

    out = [line(headers, headers), "  ".join("-" * w for w in widths)]
    return "\n".join(out + [line(t, r) for t, r in zip(text, rows, strict=True)])


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return "-" if value is None else str(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _spread(c: dict[str, Any], prefix: str = "") -> list[str]:
    raw, norm = c[f"{prefix}raw"], c[f"{prefix}reference_normalised"]
    return [_pct(raw["median"]), _pct(raw["p90"]), _pct(raw["within_5pct"]),
            _pct(norm["median"]), _pct(norm["p90"]), _pct(norm["within_5pct"])]


def report(results: dict[str, Any]) -> str:
    """The three tables."""
    cost = results["backends"]
    rows = [[r["backend"], r["kit_format"] + (" (shared)" if r["kit_shared"] else ""),
             r["cells"], r["kit_build_s"], r["measure_s"], r["measure_s_per_cell"],
             r["full_cells"], r["full_lut_measure_s"], r["full_lut_total_s"],
             r["measure_under_10_min"], _pct(r["repeatability"]["remeasured"][0]),
             f"extrapolated from {r['cells']}" if r["extrapolated"] else "measured"]
            for r in cost]
    rows += [[r["backend"], *["-"] * 10, f"skipped: {r['reason']}"] for r in results["skipped"]]
    out = ["1. Profile cost (1 thread, default protocol; seconds; full = every cell)",
           table(["backend", "kit", "cells", "build_s", "measure_s", "s/cell", "full cells",
                  "full measure_s", "full total_s", "<10 min", "re-measured", "basis"], rows)]
    spread = ["median", "p90", "<=5%", "norm median", "norm p90", "norm <=5%"]
    rows = [[r["backend"], name, r["repeatability"]["raw"]["cells"],
             *_spread(r["repeatability"], prefix),
             _pct(r["repeatability"]["reference_drift_b_over_a"])]
            for r in cost for name, prefix in (("median_ms", ""), ("p10_ms", "p10_"))]
    out += ["", f"2. Repeatability: two runs of one kit, cells > {MIN_MS} ms, |a-b|/mean(a,b); "
            "norm: each run / median of its reference-cell medians",
            table(["backend", "statistic", "cells", *spread, "ref drift"], rows)]
    if noise := results.get("noise"):
        rows = [[name, p["rounds"], p["raw"]["cells"], *_spread(p),
                 _pct(float(np.mean(p["median_cv"]))), _pct(float(np.mean(p["remeasured"]))),
                 float(np.mean(p["measure_s"]))] for name, p in noise["protocols"].items()]
        out += ["", f"3. Noise protocol on {noise['backend']}, {noise['cells']} cells, runs "
                "block, rounds, block, rounds: spread of medians between the two runs of each",
                table(["protocol", "rounds", "cells", *spread, "cv within", "re-measured",
                       "measure_s"], rows),
                f"rounds / block, median |a-b|: {_fmt(noise['rounds_over_block_median_diff'])}"]
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
    parser.add_argument("--chunk", type=int, help="the runner's --chunk (default: its own)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cell subsets")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 10 cells per backend, 10 in the noise section")
    parser.add_argument("--workdir", type=Path, help="keep kits and measurements here")
    parser.add_argument("--verbose", action="store_true", help="exporter and runner output")
    parser.add_argument("-o", "--output", type=Path,
                        default=Path(__file__).parent / "results" / "profile_cost.json")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.cells = args.cells or 10
        args.noise_cells = min(args.noise_cells, 10)
    for name, least in (("cells", 1), ("tflite_cells", 0), ("noise_cells", 0)):
        value = getattr(args, name)
        if value is not None and value < least:
            raise SystemExit(f"error: --{name.replace('_', '-')} must be >= {least}, got {value}")
    space = get_space("mbv2", resolution=args.resolution)
    infos = {info.name: info for info in list_backends()}
    results: dict[str, Any] = {
        "benchmark": "profile_cost", "timestamp": utc_now(),
        "argv": sys.argv[1:] if argv is None else list(argv),
        "args": arguments(args),
        "host": {**host_facts(), "loadavg_start": os.getloadavg()},
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
        kits = Kits(work, verbose=args.verbose)
        for backend in args.backends:
            if not infos[backend].available:
                log(f"skipping {backend}: {infos[backend].reason}")
                results["skipped"].append({"backend": backend, "reason": infos[backend].reason})
            else:
                results["backends"].append(cost_and_repeatability(args, space, kits, work,
                                                                   backend))
        if args.noise_cells and infos[args.noise_backend].available:
            results["noise"] = noise_protocol(args, space, kits, work)
    results["wall_s"] = time.perf_counter() - _T0
    results["host"]["loadavg_end"] = os.getloadavg()  # other work on this shared machine
    write_report(args.output, results)
    print(report(results))
    print(f"\nwall {results['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
