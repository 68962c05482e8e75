"""Accuracy of the latency predictors on archs measured end to end (issue 4).

For each backend (onnxruntime, openvino, tflite), ``mbv2`` at 224x224, 1 thread: a kit
with every cell plus ``--archs`` whole random archs (``models.kit.make_kit``, cached in
``--workdir``) is measured by the board runner (``profilers.runner``: cells and archs
interleaved in rounds, so the archs see the same drift as the cells; chunks timed while
the machine was slow are timed again; a rerun resumes).
The first ``--pool`` archs are the training pool, the rest are held out (>= 100).

Prints, per backend: each predictor fitted on the whole pool and judged on the held-out
archs (within +-10%, +-5%, RMSE, MAPE, Kendall tau, the run's noise floor); the curve of
accuracy vs. number of end-to-end training archs (5/10/20/50, mean over ``--repeats``
seeded draws); profiling time; prediction throughput (archs/s, one thread, 100k archs).
Writes ``benchmarks/results/predictor_accuracy.json``::

    flock /tmp/hwnas-cpu.lock .venv/bin/python benchmarks/predictor_accuracy.py \\
        --backends onnxruntime,openvino --workdir /tmp/hwnas-pa
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core for the throughput figures

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from _report import utc_now, write_report  # noqa: E402

from latency import (  # noqa: E402
    LookupTable,
    Samples,
    evaluate,
    get_predictor,
    samples_from_measurements,
    save_samples,
)
from profilers.formats import load_measurements, read_manifest  # noqa: E402
from spaces import get_space  # noqa: E402

BACKENDS = ("onnxruntime", "openvino", "tflite")
KIT_FORMAT = {"onnxruntime": "onnx", "openvino": "onnx", "tflite": "tflite"}
CURVE = (5, 10, 20, 50)
# (label, kind, uses the LUT)
MODELS = (("lut", "lut", True), ("fox", "fox", True), ("residual", "residual", True),
          ("fox-noLUT", "fox", False), ("residual-noLUT", "residual", False),
          ("flops", "flops", False))
_T0 = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def kit_for(fmt: str, archs: int, workdir: Path) -> tuple[Path, float]:
    """The kit of ``fmt`` with ``archs`` whole archs, built once (cached); build seconds."""
    space = get_space("mbv2", resolution=224)
    path = workdir / f"kit-{fmt}-{archs}.zip"
    if path.exists():
        m = read_manifest(path)
        if (m.space, m.params, m.format) == (space.name, space.params, fmt) and \
                sum(e.kind == "arch" for e in m.entries) == archs:
            log(f"reusing {path}")
            return path, float("nan")
    from models.kit import make_kit

    log(f"building {path} ({len(space.cells())} cells + {archs} archs)")
    start = time.perf_counter()
    make_kit(space, fmt, path, archs=archs, seed=0)
    return path, time.perf_counter() - start


def measure(backend: str, kit: Path, workdir: Path, runs: int) -> tuple[Path, float]:
    from profilers import runner

    out = workdir / f"measurements-{backend}-{kit.stem}.json"
    if out.exists() and load_measurements(out).complete:
        log(f"reusing {out}")
        return out, float("nan")
    log(f"measuring {kit} on {backend}")
    start = time.perf_counter()
    # Chunks of 32 (about 30 s each) follow the machine's speed closely enough for each to
    # have one level; up to 3 passes re-time the chunks it was slow for (profilers.runner).
    code = runner.main(["run", str(kit), "--backend", backend, "--threads", "1",
                        "--runs", str(runs), "--chunk", "32", "--retries", "3",
                        "--settle-s", "30", "-o", str(out), "--quiet"])
    if code:
        raise SystemExit(f"runner failed with {code}")
    return out, time.perf_counter() - start


def fit(kind: str, use_lut: bool, lut: LookupTable, train: Samples):
    return get_predictor(kind).fit(lut=lut if use_lut else None, samples=train)


def throughput(predictors: dict[str, Any], space: Any) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(1)
    idx = np.stack([rng.integers(n, size=100_000) for n in space.num_choices], axis=1)
    archs = [space.from_indices(row) for row in idx[:100_000]]
    out = {}
    for label, pred in predictors.items():
        start = time.perf_counter()
        pred.predict(idx)
        t_idx = time.perf_counter() - start
        start = time.perf_counter()
        pred.predict(archs)
        t_arch = time.perf_counter() - start
        out[label] = {"index_archs_per_s": 100_000 / t_idx, "arch_objects_per_s": 100_000 / t_arch,
                      "seconds_100k_arch_objects": t_arch}
    return out


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    fmt = KIT_FORMAT[backend]
    archs = args.archs if backend != "tflite" else args.tflite_archs
    kit, build_s = kit_for(fmt, archs, args.workdir)
    mpath, measure_s = measure(backend, kit, args.workdir, args.runs)
    doc = load_measurements(mpath)
    manifest = read_manifest(kit)
    # Backends are measured in separate invocations and merged into one file: each keeps
    # when, and on which host, it was measured (the machines differ between sessions).
    result: dict[str, Any] = {
        "measured_at": doc.archs[-1].timestamp.isoformat() if doc.archs else None,
        "host": doc.host.model_dump(), "cost": {
        "kit_build_s": build_s, "measure_s_total": measure_s,
        "note": "kit build and measuring cover cells and archs together; NaN: reused from "
                "an earlier run of this script"}}
    for statistic in ("p10_ms", "median_ms"):
        result[statistic], fitted = analyse(doc, manifest, statistic, args)
    cell_ms = sum(m.median_ms * m.runs for m in doc.cells)
    arch_ms = sum(m.median_ms * m.runs for m in doc.archs)
    result["cost"]["lut_share_of_timed_ms"] = cell_ms / (cell_ms + arch_ms)
    result["throughput"] = throughput(
        {k: fitted[k] for k in ("lut", "fox", "residual", "flops")}, get_space("mbv2"))
    return result


def analyse(doc: Any, manifest: Any, statistic: str, args: argparse.Namespace
            ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every model fitted on the pool and judged on the held-out archs, plus the curve."""
    lut = LookupTable.from_measurements(doc, statistic=statistic)
    samples = samples_from_measurements(doc, manifest, statistic=statistic)
    pool_n = min(args.pool, len(samples) - 1)
    pool, held = samples.subset(range(pool_n)), samples.subset(range(pool_n, len(samples)))
    backend = lut.device.backend
    save_samples(args.workdir / f"e2e-train-{backend}-{statistic}.json", pool)
    save_samples(args.workdir / f"e2e-heldout-{backend}-{statistic}.json", held)
    result: dict[str, Any] = {
        "device": lut.device.model_dump(), "noise_floor": lut.noise_floor(),
        "lut_cells": len(lut), "pool": len(pool), "held_out": len(held),
        "full_pool": {}, "curve": {},
    }
    fitted = {}
    for label, kind, use_lut in MODELS:
        pred = fit(kind, use_lut, lut, pool)
        fitted[label] = pred
        result["full_pool"][label] = evaluate(pred, held).model_dump()
    lut_only = get_predictor("lut").fit(lut=lut)
    fitted["lut-no-e2e"] = lut_only
    result["full_pool"]["lut-no-e2e"] = evaluate(lut_only, held).model_dump()
    result["fox_describe"] = fitted["fox"].describe()
    result["by_chunk"] = by_chunk(doc, pool_n, held, fitted)
    for n in (n for n in CURVE if n <= len(pool)):
        rows: dict[str, list[dict[str, Any]]] = {}
        for r in range(args.repeats):
            pick = np.sort(np.random.default_rng(100 + r).choice(len(pool), n, replace=False))
            train = pool.subset(pick)
            for label, kind, use_lut in MODELS:
                if n < get_predictor(kind).min_samples:
                    continue
                rows.setdefault(label, []).append(
                    evaluate(fit(kind, use_lut, lut, train), held).model_dump())
        result["curve"][str(n)] = {
            label: {key: float(np.mean([row[key] for row in reports]))
                    for key in ("within_10pct", "within_5pct", "mape", "kendall_tau")}
            for label, reports in rows.items()}
    return result, fitted


def by_chunk(doc: Any, pool_n: int, held: Samples, fitted: dict[str, Any]
             ) -> list[dict[str, Any]]:
    """fox's and lut's accuracy per runner chunk (archs saved together share a timestamp),
    beside the chunk's median arch CV: where other load hit the machine, both jump."""
    held_archs = doc.archs[pool_n:]
    stamps = [m.timestamp.isoformat()[:19] for m in held_archs]
    cvs = np.array([m.cv for m in held_archs])
    rows = []
    for stamp in sorted(set(stamps)):
        mask = np.array([s == stamp for s in stamps])
        sub = held.subset(np.flatnonzero(mask))
        first = held_archs[int(np.flatnonzero(mask)[0])]
        rows.append({"chunk_saved_at": stamp, "archs": int(mask.sum()),
                     "median_arch_cv": float(np.median(cvs[mask])),
                     "reference_ms": first.reference_ms, "probe_ms": first.probe_ms,
                     **{f"{k}_within_10pct": evaluate(fitted[k], sub).within_10pct
                        for k in ("lut", "fox")}})
    return rows


def print_backend(backend: str, full: dict[str, Any]) -> None:
    for statistic in ("p10_ms", "median_ms"):
        print_statistic(f"{backend} ({statistic})", full[statistic])
    cost = full["cost"]
    print(f"cost: kit build {cost['kit_build_s']:.0f} s, measuring {cost['measure_s_total']:.0f} s "
          f"(cells {cost['lut_share_of_timed_ms']:.0%} of timed inference)")
    for label, t in full["throughput"].items():
        print(f"throughput {label:<9} {t['index_archs_per_s']:>12,.0f} archs/s (indices)  "
              f"{t['arch_objects_per_s']:>10,.0f} archs/s (Arch objects)")


def print_statistic(backend: str, res: dict[str, Any]) -> None:
    floor = f"{res['noise_floor']:.1%}" if res["noise_floor"] is not None else "n/a"
    print(f"\n== {backend}: {res['device']['backend_version']}, {res['lut_cells']} cells, "
          f"pool {res['pool']}, held out {res['held_out']}, noise floor {floor}")
    print(f"{'model':<15} {'+-10%':>7} {'+-5%':>7} {'RMSE ms':>8} {'MAPE':>7} {'tau':>6}")
    for label, rep in res["full_pool"].items():
        print(f"{label:<15} {rep['within_10pct']:7.1%} {rep['within_5pct']:7.1%} "
              f"{rep['rmse_ms']:8.3f} {rep['mape']:7.2%} {rep['kendall_tau']:6.3f}")
    print("accuracy (+-10%) vs. number of end-to-end training archs (mean over draws):")
    labels = [m[0] for m in MODELS]
    print(f"{'n':>4} " + " ".join(f"{label:>14}" for label in labels))
    for n, row in res["curve"].items():
        cells = [f"{row[label]['within_10pct']:14.1%}" if label in row else f"{'-':>14}"
                 for label in labels]
        print(f"{n:>4} " + " ".join(cells))
    print("held-out archs by runner chunk (other load on the machine shows as arch CV):")
    for row in res["by_chunk"]:
        levels = f"ref {row.get('reference_ms') or float('nan'):6.3f} ms"
        if row.get("probe_ms"):
            levels += f"  probe {row['probe_ms']:7.3f} ms"
        print(f"  {row['chunk_saved_at'][11:19]}  n={row['archs']:<3} arch cv "
              f"{row['median_arch_cv']:6.1%}  {levels}  lut {row['lut_within_10pct']:6.1%}  "
              f"fox {row['fox_within_10pct']:6.1%} within +-10%")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--archs", type=int, default=170, help="whole archs in the kit")
    parser.add_argument("--tflite-archs", type=int, default=170)
    parser.add_argument("--pool", type=int, default=50, help="training pool (rest held out)")
    parser.add_argument("--repeats", type=int, default=5, help="draws per curve point")
    parser.add_argument("--runs", type=int, default=60, help="timed runs per entry")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/hwnas-pa"))
    parser.add_argument("--output", type=Path,
                        default=Path(__file__).parent / "results" / "predictor_accuracy.json")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    if args.output.exists():
        results = json.loads(args.output.read_text()).get("backends", {})
    for backend in args.backends.split(","):
        if backend not in KIT_FORMAT:
            parser.error(f"--backends: unknown backend {backend!r}")
        results[backend] = run_backend(backend, args)
        print_backend(backend, results[backend])
    payload = {"benchmark": "predictor_accuracy", "timestamp": utc_now(),
               "argv": sys.argv[1:], "space": {"name": "mbv2", "resolution": 224},
               "python": platform.python_version(), "backends": results}
    write_report(args.output, payload, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
