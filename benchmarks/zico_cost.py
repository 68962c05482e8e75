"""ZiCo's cost per arch: the first implementation vs the current one (issue 5).

Seeded random archs of the 32x32 ``mbv2`` space at each ``--widths``, 2 batches of
``--batch-size`` from the bundled digits, ``--threads`` torch threads. Per arch, the three
ways score the same net from the same seed, in rotating order, so machine drift hits all
alike:

- **old**: the first implementation, inline below: NCHW net and images, ``.backward()``
  into every parameter's ``.grad``, a clone of every counted gradient, float32 statistics
  per layer.
- **new**: ``search.estimators.ZiCo`` as it is: channels_last net and images, gradients of
  the counted weights only, float64 statistics over one flat vector, the 2 batches one
  after the other on ``--threads`` threads.
- **side**: the same with ``side_by_side=True``: with 2 threads or more the 2 batches run
  at once, one thread each (the same as **new** on 1 thread).

All include building and initialising the net; ``build_s`` is that share, timed apart.
The two ways' scores differ by float32 rounding (``search/estimators/zico.py`` says why);
``--float64-check K`` also scores the first K archs of each width exactly, in float64
(slow: ~20 s an arch at width 0.25), and reports how far each way is from it.

Prints a table and writes ``benchmarks/results/zico_cost.json``::

    flock /tmp/hwnas-cpu.lock .venv/bin/python benchmarks/zico_cost.py         # ~2 minutes
    flock /tmp/hwnas-cpu.lock .venv/bin/python benchmarks/zico_cost.py --float64-check 12
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _report import host_facts, utc_now, write_report
from scipy import stats
from torch import nn

from models import build
from search.data import load_dataset
from search.estimators import get_estimator
from spaces import Arch, Space, get_space

RESULTS = Path(__file__).parent / "results" / "zico_cost.json"
Batches = Sequence[tuple[torch.Tensor, torch.Tensor]]


def old_zico_score(net: nn.Module, batches: Batches) -> float:
    """The first implementation of `search.estimators.zico_score`, verbatim."""
    layers = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    grads: list[list[torch.Tensor]] = [[] for _ in layers]
    net.train()
    for x, y in batches:
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        for i, layer in enumerate(layers):
            if layer.weight.grad is not None:
                grads[i].append(layer.weight.grad.detach().reshape(-1).clone())
    net.zero_grad(set_to_none=True)
    total = 0.0
    for g in grads:
        if len(g) < 2:
            continue
        stacked = torch.stack(g)
        std = stacked.std(dim=0, unbiased=False)
        keep = std > 0
        ratio = float((stacked.abs().mean(dim=0)[keep] / std[keep]).sum())
        if ratio != 0.0:
            total += float(np.log(ratio))
    return total


def old_score(space: Space, arch: Arch, batches: Batches, *, seed: int,
              dtype: torch.dtype = torch.float32) -> float:
    """The first `ZiCo.score` for one arch (NCHW), optionally in another float type."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = build(space, arch)
    return old_zico_score(net.to(dtype), [(x.to(dtype), y) for x, y in batches])


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def run_width(width: float, args: argparse.Namespace) -> dict[str, Any]:
    space = get_space("mbv2", resolution=args.resolution, width=width, classes=10)
    data = load_dataset(None, resolution=args.resolution, seed=0)
    zico, side = (get_estimator("zico", space=space, data=data, batch_size=args.batch_size,
                                seed=args.seed, threads=args.threads, side_by_side=way)
                  for way in (False, True))
    # The same images in NCHW for the old way (the estimator keeps them channels_last).
    nchw = [(x.contiguous(), y) for x, y in zico.batches]
    rng = np.random.default_rng(args.seed)
    rows = []
    for i in range(args.archs):
        arch = space.sample(rng)
        runs = {
            "old": lambda arch=arch: old_score(space, arch, nchw, seed=args.seed),
            "new": lambda arch=arch: float(zico.score([arch])[0]),
            "side": lambda arch=arch: float(side.score([arch])[0]),
        }
        row: dict[str, Any] = {"arch": space.encode(arch)}
        ways = list(runs)
        for way in ways[i % 3:] + ways[:i % 3]:
            row[f"{way}_score"], row[f"{way}_s"] = timed(runs[way])
        row["build_s"] = timed(build, space, arch)[1]
        if i < args.float64_check:
            row["float64_score"] = old_score(space, arch, nchw, seed=args.seed,
                                             dtype=torch.float64)
        rows.append(row)
        print(f"[w{width} {i + 1}/{args.archs}] old {row['old_s']:.2f}s new {row['new_s']:.2f}s "
              f"(side by side {row['side_s']:.2f}s) "
              f"build {row['build_s']:.3f}s  scores {row['old_score']:.2f} / "
              f"{row['new_score']:.2f}", flush=True)
    return {"width": width, "archs": rows, "summary": summarise(rows)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    old_s = np.array([r["old_s"] for r in rows])
    new_s = np.array([r["new_s"] for r in rows])
    old = np.array([r["old_score"] for r in rows])
    new = np.array([r["new_score"] for r in rows])
    out: dict[str, Any] = {
        "old_s_per_arch": float(old_s.mean()), "new_s_per_arch": float(new_s.mean()),
        "speedup": float(old_s.mean() / new_s.mean()),
        "speedup_median_per_arch": float(np.median(old_s / new_s)),
        "side_by_side_s_per_arch": float(np.mean([r["side_s"] for r in rows])),
        "side_by_side_over_new": float(np.mean([r["side_s"] for r in rows]) / new_s.mean()),
        "build_s_per_arch": float(np.mean([r["build_s"] for r in rows])),
        "new_vs_old_rel_diff_mean": float(np.mean(np.abs(new / old - 1))),
        "new_vs_old_rel_diff_max": float(np.max(np.abs(new / old - 1))),
    }
    if len(rows) >= 2:
        out["new_vs_old_kendall_tau"] = float(stats.kendalltau(new, old).statistic)
    exact = [r for r in rows if "float64_score" in r]
    if exact:
        f64 = np.array([r["float64_score"] for r in exact])
        check: dict[str, Any] = {"archs": len(exact)}
        for way in ("old", "new"):
            s = np.array([r[f"{way}_score"] for r in exact])
            check[f"{way}_rel_err_mean"] = float(np.mean(np.abs(s / f64 - 1)))
            check[f"{way}_rel_err_max"] = float(np.max(np.abs(s / f64 - 1)))
            if len(exact) >= 2:
                check[f"{way}_kendall_tau"] = float(stats.kendalltau(s, f64).statistic)
        out["float64_check"] = check
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=10, help="random archs per width")
    ap.add_argument("--widths", default="0.25,0.5")
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0, help="arch sample, batches and init")
    ap.add_argument("--float64-check", type=int, default=0, metavar="K",
                    help="also score the first K archs of each width in float64")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    # Other sessions share the machine's cores: the load says how far to trust the seconds.
    load_before = os.getloadavg()[0]
    widths = [run_width(float(w), args) for w in args.widths.split(",") if w]
    load_after = os.getloadavg()[0]

    print(f"\nZiCo s/arch, mbv2 {args.resolution}px, batch {args.batch_size}, "
          f"{args.threads} thread(s), {args.archs} archs per width (old = first "
          f"implementation, inline); 1-min load {load_before:.1f} before, "
          f"{load_after:.1f} after, on {os.cpu_count()} cores")
    print(f"{'width':>5s} {'old s':>6s} {'new s':>6s} {'side s':>6s} {'side/new':>8s} "
          f"{'ratio':>6s} {'median':>6s} {'build s':>7s} {'score diff':>10s} {'tau':>5s}")
    for w in widths:
        s = w["summary"]
        print(f"{w['width']:5.2f} {s['old_s_per_arch']:6.2f} {s['new_s_per_arch']:6.2f} "
              f"{s['side_by_side_s_per_arch']:6.2f} {s['side_by_side_over_new']:8.2f} "
              f"{s['speedup']:6.2f} {s['speedup_median_per_arch']:6.2f} "
              f"{s['build_s_per_arch']:7.3f} {s['new_vs_old_rel_diff_mean']:9.2%} "
              f"{s.get('new_vs_old_kendall_tau', float('nan')):5.2f}")
        if "float64_check" in s:
            c = s["float64_check"]
            nan = float("nan")
            print(f"      float64 check ({c['archs']} archs): " + ", ".join(
                f"{way} {c[f'{way}_rel_err_mean']:.2%} off (max {c[f'{way}_rel_err_max']:.2%}, "
                f"tau {c.get(f'{way}_kendall_tau', nan):.2f})" for way in ("old", "new")))
    report = {
        "schema_version": 1,
        "date": utc_now(),
        "host": {**host_facts(), "threads": args.threads, "torch": torch.__version__,
                 "load_1min_before": load_before, "load_1min_after": load_after},
        "command": " ".join(["benchmarks/zico_cost.py", *(argv or sys.argv[1:])]),
        "settings": {"space": "mbv2", "resolution": args.resolution,
                     "batch_size": args.batch_size, "batches": 2, "seed": args.seed,
                     "archs_per_width": args.archs},
        "widths": widths,
    }
    write_report(args.out, report, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
