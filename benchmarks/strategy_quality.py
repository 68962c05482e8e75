"""Search quality of every strategy against random at equal numbers of estimator calls.

On the synthetic objective of ``tests/search/synthetic.py`` (a fixed random linear score of
the space's one-hot features with a pull towards costly ops, under a linear cost budget at
the 30% quantile of random archs), for the ``mbv2`` and ``nb201`` spaces and several
seeds. The ``structured`` objective adds a part shared by every slot per op factor
(kernel, expansion, ...), the shape of real accuracy; nb201 has no factors, so it only
runs the plain one. Per strategy: the best score after ``--calls`` calls (mean and std over
seeds, and its ratio to random's), and the calls it needed to reach random's final best
(median over the seeds where it did, and in how many it did). The search-quality
benchmark with real estimators is ``benchmarks/search_quality.py``.

Prints a table and writes ``benchmarks/results/strategy_quality.json``; run it as a module
from the repository root (it imports the objective from ``tests``)::

    .venv/bin/python -m benchmarks.strategy_quality             # ~1-2 minutes
    .venv/bin/python -m benchmarks.strategy_quality --calls 1000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._report import host_facts, utc_now, write_report
from search.strategies import list_strategies
from spaces import get_space
from tests.search.synthetic import run

OUT = Path(__file__).resolve().parent / "results" / "strategy_quality.json"
SETTINGS = (("mbv2", "plain", 0.0), ("mbv2", "structured", 1.0), ("nb201", "plain", 0.0))


def calls_to_reach(curve: list[float], target: float) -> int | None:
    """1-based number of calls after which `curve` (running best) reaches `target`."""
    hit = np.flatnonzero(np.asarray(curve) >= target)
    return int(hit[0]) + 1 if hit.size else None


def measure(space_name: str, objective: str, structure: float, *, calls: int,
            seeds: list[int]) -> list[dict[str, Any]]:
    space = get_space(space_name)
    curves: dict[str, list[list[float]]] = {}
    seconds: dict[str, float] = {}
    for name in list_strategies():
        start = time.perf_counter()
        curves[name] = [run(name, space, seed=s, calls=calls, structure=structure)
                        for s in seeds]
        seconds[name] = time.perf_counter() - start
    random_best = [c[-1] for c in curves["random"]]
    rows = []
    for name, runs in curves.items():
        best = [c[-1] for c in runs]
        reach = [calls_to_reach(c, r) for c, r in zip(runs, random_best, strict=True)]
        reached = [r for r in reach if r is not None]
        rows.append({
            "space": space_name, "objective": objective, "strategy": name,
            "best_mean": float(np.mean(best)), "best_std": float(np.std(best)),
            "best_vs_random": float(np.mean(best) / np.mean(random_best)),
            "calls_to_random_best_median": float(np.median(reached)) if reached else None,
            "reached": len(reached), "seeds": len(seeds),
            "calls_made": [len(c) for c in runs], "best_per_seed": best,
            "calls_to_random_best": reach, "seconds": round(seconds[name], 3),
        })
    return rows


def table(rows: list[dict[str, Any]], calls: int) -> str:
    head = (f"{'space':6} {'objective':10} {'strategy':10} {'best (mean±std)':>16} "
            f"{'vs random':>9} {'calls to random best':>21} {'s':>6}")
    lines = [f"best score after {calls} calls; calls to reach random's best: median (reached)",
             head, "-" * len(head)]
    for r in rows:
        med = r["calls_to_random_best_median"]
        reach = f"{med:.0f} ({r['reached']}/{r['seeds']})" if med is not None else \
            f"- (0/{r['seeds']})"
        lines.append(f"{r['space']:6} {r['objective']:10} {r['strategy']:10} "
                     f"{r['best_mean']:9.2f}±{r['best_std']:<6.2f} {r['best_vs_random']:9.2f} "
                     f"{reach:>21} {r['seconds']:6.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="estimator calls per run")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per setting")
    parser.add_argument("--output", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.calls < 1 or args.seeds < 1:
        parser.error("--calls and --seeds must be >= 1")
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for space_name, objective, structure in SETTINGS:
        rows += measure(space_name, objective, structure, calls=args.calls,
                        seeds=list(range(args.seeds)))
    print(table(rows, args.calls))
    result = {
        "benchmark": "strategy_quality",
        "timestamp": utc_now(),
        "argv": sys.argv[1:] if argv is None else argv,
        "args": {"calls": args.calls, "seeds": args.seeds},
        "host": host_facts(),
        "versions": {"numpy": np.__version__},
        "rows": rows,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    write_report(args.output, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
