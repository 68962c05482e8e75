"""Training step time in NCHW vs channels_last memory format (issues 5 and 8).

Seeded random archs of the 32x32 ``mbv2`` space at each ``--widths``; per arch, one net
from one seed is trained for ``--steps`` SGD steps on batches of the bundled digits in
each layout, the two in rotating order so machine drift hits both alike (after 2 warm-up
steps each, which pay for oneDNN's kernel setup). ``channels_last`` is what
`search.training` trains in (`search.training.loop.channels_last`); ``nchw`` is PyTorch's
default. The last loss of each is printed too, but it is no check: from a net at
initialisation at this rate, float32 rounding grows within a few steps (the layouts'
losses after 10 steps differ by up to 1.3 nats), while in float64 the two layouts agree
to 1e-9 (`tests/search/test_train.py::test_channels_last_is_the_same_math`).

Prints a table and writes ``benchmarks/results/train_speed.json``::

    flock /tmp/hwnas-cpu.lock .venv/bin/python benchmarks/train_speed.py        # ~3 minutes
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _report import host_facts, utc_now, write_report
from torch import nn

from models import build
from search.data import load_dataset
from search.training.loop import channels_last, random_batch
from spaces import get_space

RESULTS = Path(__file__).parent / "results" / "train_speed.json"
LAYOUTS = ("nchw", "channels_last")


def time_steps(net: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]],
               warmup: int = 2) -> tuple[float, float]:
    """Seconds per SGD step over `batches` after `warmup` untimed ones, and the last loss."""
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    net.train()
    started = 0.0
    for i, (x, y) in enumerate(batches):
        if i == warmup:
            started = time.perf_counter()
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - started) / (len(batches) - warmup), float(loss)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", default="0.25,0.5")
    ap.add_argument("--archs", type=int, default=4, help="archs per width")
    ap.add_argument("--steps", type=int, default=8, help="timed steps per arch and layout")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    try:
        widths = [float(w) for w in args.widths.split(",")]
    except ValueError:
        print(f"--widths: expected comma-separated numbers, got {args.widths!r}",
              file=sys.stderr)
        return 2
    if min(args.archs, args.steps, args.batch_size, args.threads) < 1:
        print("--archs, --steps, --batch-size and --threads must be positive", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    data = load_dataset(None, resolution=32, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    batches = [random_batch(data, args.batch_size, rng) for _ in range(args.steps + 2)]
    load_before = os.getloadavg()[0]
    rows: list[dict[str, Any]] = []
    for width in widths:
        space = get_space("mbv2", resolution=32, width=width, classes=10)
        arch_rng = np.random.default_rng(args.seed)
        for i in range(args.archs):
            arch = space.sample(arch_rng)
            torch.manual_seed(args.seed)
            base = build(space, arch)
            row: dict[str, Any] = {"width": width, "arch": space.encode(arch)}
            order = LAYOUTS if i % 2 == 0 else LAYOUTS[::-1]
            for layout in order:
                net = copy.deepcopy(base)
                if layout == "channels_last":
                    channels_last(net)
                row[f"{layout}_s"], row[f"{layout}_loss"] = time_steps(net, batches)
            row["speedup"] = row["nchw_s"] / row["channels_last_s"]
            rows.append(row)
            print(f"width {width:<5} arch {i}: nchw {row['nchw_s']:.3f} s/step, "
                  f"channels_last {row['channels_last_s']:.3f} s/step, "
                  f"{row['speedup']:.2f}x; loss {row['nchw_loss']:.4f} vs "
                  f"{row['channels_last_loss']:.4f}", flush=True)
    summary = []
    print(f"\n{'width':>6} {'nchw s/step':>12} {'cl s/step':>10} {'speedup (median)':>17}")
    for width in widths:
        mine = [r for r in rows if r["width"] == width]
        entry = {"width": width,
                 "nchw_s": float(np.median([r["nchw_s"] for r in mine])),
                 "channels_last_s": float(np.median([r["channels_last_s"] for r in mine])),
                 "speedup_median": float(np.median([r["speedup"] for r in mine])),
                 "speedup_min": float(min(r["speedup"] for r in mine)),
                 "max_loss_gap": float(max(abs(r["nchw_loss"] - r["channels_last_loss"])
                                           for r in mine))}
        summary.append(entry)
        print(f"{width:>6} {entry['nchw_s']:>12.3f} {entry['channels_last_s']:>10.3f} "
              f"{entry['speedup_median']:>16.2f}x")
    out = {"schema_version": 1, "date": utc_now(),
           "command": "benchmarks/train_speed.py " + " ".join(argv or sys.argv[1:]),
           "host": {**host_facts(), "torch": torch.__version__, "threads": args.threads,
                    "load_1min_before": load_before, "load_1min_after": os.getloadavg()[0]},
           "settings": {"space": "mbv2", "resolution": 32, "batch_size": args.batch_size,
                        "steps": args.steps, "archs_per_width": args.archs, "seed": args.seed},
           "summary": summary, "archs": rows}
    write_report(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
