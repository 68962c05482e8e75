"""ZiCo scored in one process vs fanned out over local Ray actors (issue 7).

One search batch (`--archs` archs of mbv2 at the search's estimation size) is scored by
ZiCo three ways: in this process (torch's default threads), on `RayEstimator` with
`--actors` actors the first time (actor start, torch import, estimator copy included),
and on the same actors again (warm: what every later batch of a search costs). Scores
are checked equal to the in-process ones at one torch thread (`threads=1`, the thread
count Ray gives a 1-CPU actor). On a 2-core machine two actors can at best halve a
batch's time; the cold start is paid once per search.

First results (16 archs, width 0.25, the shared 2-core machine at load ~3.5 from other
sessions, so only the ratios of this one run mean much): one process 71 s at one torch
thread and 166 s at two (two threads fight the other load), two actors 44 s cold and
45 s warm: 1.6x the best in-process time, scores identical.

Prints a table and writes `benchmarks/results/ray_fanout.json`::

    flock /tmp/hwnas-cpu.lock .venv/bin/python benchmarks/ray_fanout.py   # ~3 minutes
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _report import write_report

from spaces import Arch

RESULTS = Path(__file__).parent / "results" / "ray_fanout.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=16)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--width", type=float, default=0.25)
    args = parser.parse_args(argv)
    import ray

    from search.estimators import get_estimator
    from service.jobs.ray_estimator import RayEstimator
    from spaces import get_space

    space = get_space("mbv2", resolution=32, width=args.width, classes=10)
    archs = [space.sample(np.random.default_rng(i)) for i in range(args.archs)]
    estimator = get_estimator("zico", space=space, seed=0, threads=1)
    times: dict[str, float] = {}

    def timed(name: str, score: Callable[[list[Arch]], np.ndarray]) -> np.ndarray:
        start = time.perf_counter()
        out = score(archs)
        times[name] = round(time.perf_counter() - start, 2)
        return out

    local_1 = timed("local_1_thread_s", estimator.score)
    estimator.threads = None
    timed("local_default_threads_s", estimator.score)
    estimator.threads = 1
    ray.init(num_cpus=args.actors, include_dashboard=False, log_to_driver=False)
    try:
        remote = RayEstimator(estimator, actors=args.actors)
        cold = timed("ray_cold_s", remote.score)
        warm = timed("ray_warm_s", remote.score)
        remote.close()
    finally:
        ray.shutdown()
    result = {**times, "equal_scores": bool(np.array_equal(cold, local_1)
                                             and np.array_equal(warm, local_1)),
              "speedup_warm_vs_best_local": round(
                  min(times["local_1_thread_s"], times["local_default_threads_s"])
                  / times["ray_warm_s"], 2),
              "setup": {"archs": args.archs, "actors": args.actors, "width": args.width,
                        "cpu_count": os.cpu_count()}}
    for name, value in result.items():
        print(f"{name:<30}{value}")
    write_report(RESULTS, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
