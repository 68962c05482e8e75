"""ZiCo's cost per arch with glibc's default malloc against `keep_freed_memory` (issue 5).

`search.training.loop.keep_freed_memory` stops glibc from handing freed activations back
to the OS between gradients. The setting is process-wide and cannot be undone, so each
way runs in a fresh child process: ``--pairs`` pairs, the two ways alternating (which one
goes first alternates too), so machine drift hits both alike. A child scores one arch to
warm up, then ``--archs`` seeded random archs of the 32x32 ``mbv2`` space at ``--width``
with ``search.estimators.ZiCo`` (2 batches of 64, ``--threads`` threads), and reports its
seconds and minor page faults per arch. The ratio kept/default is taken within each pair.

Prints a table and writes ``benchmarks/results/zico_malloc.json``::

    flock /tmp/hwnas-cpu.lock .venv/bin/python benchmarks/zico_malloc.py   # ~2 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _report import host_facts, utc_now, write_report

RESULTS = Path(__file__).parent / "results" / "zico_malloc.json"
WAYS = ("default", "kept")


def child(way: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    import search.estimators.zico as zico
    from search.estimators import get_estimator
    from spaces import get_space

    if way == "default":
        # ZiCo.score sets it on its first call; this child keeps glibc's defaults.
        zico.keep_freed_memory = lambda: False
    torch.set_num_threads(args.threads)
    space = get_space("mbv2", resolution=32, width=args.width, classes=10)
    estimator = get_estimator("zico", space=space, threads=args.threads)
    rng = np.random.default_rng(args.seed)
    estimator.score([space.default()])
    archs = [space.sample(rng) for _ in range(args.archs)]
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    scores = estimator.score(archs)
    seconds = time.perf_counter() - start
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return {"way": way, "s_per_arch": seconds / len(archs),
            "faults_per_arch": faults / len(archs), "scores": scores.tolist()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--archs", type=int, default=10)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--child", choices=WAYS, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args)))
        return 0
    load_before = os.getloadavg()[0]
    options = ["--archs", str(args.archs), "--width", str(args.width),
               "--threads", str(args.threads), "--seed", str(args.seed)]
    pairs = []
    for p in range(args.pairs):
        pair = {}
        for way in WAYS[::-1] if p % 2 else WAYS:
            done = subprocess.run([sys.executable, __file__, "--child", way, *options],
                                  check=True, capture_output=True, text=True)
            pair[way] = json.loads(done.stdout)
        if pair["default"]["scores"] != pair["kept"]["scores"]:
            raise SystemExit("the two ways scored differently: the setting changed the math")
        pairs.append({way: {k: v for k, v in r.items() if k != "scores"}
                      for way, r in pair.items()})
        print(f"[pair {p + 1}/{args.pairs}] " + "  ".join(
            f"{way} {pair[way]['s_per_arch']:.3f} s/arch "
            f"{pair[way]['faults_per_arch']:.0f} faults/arch" for way in WAYS), flush=True)
    load_after = os.getloadavg()[0]
    ratios = [r["kept"]["s_per_arch"] / r["default"]["s_per_arch"] for r in pairs]
    summary = {way: {key: float(np.mean([r[way][key] for r in pairs]))
                     for key in ("s_per_arch", "faults_per_arch")} for way in WAYS}
    summary["kept_over_default_median"] = float(np.median(ratios))
    summary["kept_over_default_per_pair"] = ratios

    print(f"\nZiCo, mbv2 32 px width {args.width}, batch 64, {args.threads} thread(s), "
          f"{args.archs} archs a child, {args.pairs} pairs; 1-min load {load_before:.1f} "
          f"before, {load_after:.1f} after, on {os.cpu_count()} cores")
    print(f"{'malloc':>8s} {'s/arch':>7s} {'faults/arch':>11s}")
    for way in WAYS:
        print(f"{way:>8s} {summary[way]['s_per_arch']:7.3f} "
              f"{summary[way]['faults_per_arch']:11.0f}")
    print(f"kept/default, median of pairs: {summary['kept_over_default_median']:.2f} "
          f"(pairs: {', '.join(f'{r:.2f}' for r in ratios)})")
    report = {
        "schema_version": 1,
        "date": utc_now(),
        "host": host_facts(),
        "config": {"pairs": args.pairs, "archs": args.archs, "width": args.width,
                   "threads": args.threads, "seed": args.seed, "resolution": 32,
                   "batch_size": 64},
        "load": {"before": load_before, "after": load_after},
        "pairs": pairs,
        "summary": summary,
    }
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
