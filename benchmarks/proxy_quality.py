"""Do the accuracy estimators rank architectures? Kendall tau / Spearman vs. trained accuracy.

Ground truth: a seeded random sample of the 32x32 ``mbv2`` space (classes 10, small width)
plus a deliberately diverse sample (depth varied by the share of ``skip`` ops, width by the
expansion, 1/3/6), each trained from scratch on the bundled digits (or ``--data``) with one
fixed short schedule (``search.training.train_net``: SGD + Nesterov, cosine LR, ``--steps``
batches), or with ``--epochs E`` by ``hwnas train``'s recipe (``search.training.recipe``:
warm-up, label smoothing, translation, BN recalibration) for E epochs: the accuracy a
user's training would reach. With ``--space nb201`` the sample is of the NATS-Bench-TSS
cell space instead (``--channels``, ``--cells``; no diverse sample: its ``none``, pool
and skip edges already span a wide range), the setting of the ZiCo paper's claim.
Accuracies are cached in ``--gt`` (JSON; archs already there are skipped, so an
interrupted run resumes, and a run with more ``--seeds`` only trains the new seeds). Each
arch's label is its mean accuracy over ``--seeds`` K training seeds (0..K-1): on the
mbv2 tasks one seed moves an arch by about as much as archs differ, and the mean of K
has 1/sqrt(K) of that noise. The tau between seed 0's and seed 1's accuracies (over every
arch when K >= 2, else over the ``--seed-check`` archs retrained with seed 1) is the
noise ceiling of a one-seed ground truth.

Then every estimator (``search.estimators.list_estimators()``) scores the same archs: the
zero-shot ones directly, ``bn`` from a BN-NAS supernet and ``supernet`` from SPOS (and
Pi-NAS) supernets trained here for ``--supernet-minutes`` each; or, with ``--scores
FILE``, the scores an earlier run of the same archs wrote are ranked against these labels
(the estimators do not depend on the labels, so a ground truth grown by seeds needs no new
supernets). Printed as one table and written to ``benchmarks/results/proxy_quality.json``::

    flock /tmp/hwnas-cpu.lock .venv/bin/python benchmarks/proxy_quality.py          # ~30 min
    .venv/bin/python benchmarks/proxy_quality.py --archs 4 --diverse 3 --steps 5 \\
        --supernet-minutes 0.2 --seed-check 2 --gt /tmp/gt.json --out /tmp/pq.json  # smoke
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _report import host_facts, utc_now, write_report
from scipy import stats

from models import build
from search.data import load_dataset
from search.estimators import get_estimator
from search.training import TrainSettings, train_net, train_supernet
from search.training.recipe import Recipe, train_arch
from spaces import Arch, Space, get_space
from spaces.mbv2 import EXPANSIONS, KERNELS, SKIP, mbconv_op

RESULTS = Path(__file__).parent / "results"


def diverse_sample(space: Space, n: int, seed: int) -> list[Arch]:
    """Archs spanning depth (share of skippable slots skipped: 0, 1/2, all) and width
    (one expansion for every op: 1, 3, 6); kernel, SE and activation random."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        expand = EXPANSIONS[i % 3]
        skip_share = (0.0, 0.5, 1.0)[(i // 3) % 3]
        ops = []
        for slot in space.slots:
            if SKIP in slot.choices and rng.random() < skip_share:
                ops.append(SKIP)
            else:
                ops.append(mbconv_op(int(rng.choice(KERNELS)), expand, bool(rng.random() < 0.5),
                                     str(rng.choice(["relu", "hswish"]))))
        out.append(space.validate(Arch(tuple(ops))))
    return out


def ground_truth(space: Space, data: Any, archs: list[tuple[str, Arch]], *, path: Path,
                 settings: dict[str, Any], seeds: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Train every arch (sample name, arch) with its seeds; cached in `path`."""
    cache: dict[str, Any] = {"schema_version": 1, "settings": settings, "archs": {}}
    if path.exists():
        old = json.loads(path.read_text())
        if _comparable(old.get("settings", {})) == _comparable(settings):
            cache = old
        else:
            print(f"{path}: settings differ, starting a new ground truth", file=sys.stderr)
    rows = cache["archs"]
    for i, (sample, arch) in enumerate(archs):
        key = space.encode(arch)
        row = rows.setdefault(key, {"sample": sample, "acc": {}})
        for seed in range(seeds.get(key, 1)):
            if str(seed) in row["acc"]:
                continue
            t0 = time.perf_counter()
            acc = train_once(space, arch, data, settings, seed)
            row["acc"][str(seed)] = acc
            row["train_s"] = time.perf_counter() - t0
            path.write_text(json.dumps(cache, indent=1))
            print(f"[gt {i + 1}/{len(archs)}] seed {seed} acc {acc:.3f} "
                  f"({row['train_s']:.0f}s) {sample}", flush=True)
    return rows


def _comparable(settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` with its recipe's defaults filled in, so that a ground truth cached
    before a recipe field existed still matches when the field's default is used."""
    if "recipe" not in settings:
        return settings
    return {**settings, "recipe": Recipe(**settings["recipe"]).model_dump(exclude={"seed"})}


def train_once(space: Space, arch: Arch, data: Any, settings: dict[str, Any], seed: int
               ) -> float:
    """One ground-truth training of `arch` with `seed`: its val accuracy."""
    if "epochs" in settings:
        recipe = Recipe(**{**settings["recipe"], "seed": seed})
        with tempfile.TemporaryDirectory() as out:
            return train_arch(space, arch, data, out=out, epochs=settings["epochs"],
                              recipe=recipe, resume=False).meta.val_accuracy
    torch.manual_seed(seed)
    return train_net(build(space, arch), data, steps=settings["steps"],
                     batch_size=settings["batch_size"], lr=settings["lr"], seed=seed)


def rank_quality(scores: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tau = stats.kendalltau(scores, truth).statistic
    rho = stats.spearmanr(scores, truth).statistic
    return {"kendall_tau": float(np.nan_to_num(tau)), "spearman": float(np.nan_to_num(rho))}


def reuse_scores(path: Path, keys: list[str], quality: Callable[[np.ndarray], dict[str, Any]]
                 ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Another run's estimator scores (and costs) of the same archs, ranked against these
    labels: a ground truth that grew by seeds or steps needs no estimator run again."""
    old = json.loads(path.read_text())
    if old["ground_truth"]["keys"] != keys:
        raise SystemExit(f"--scores {path}: its archs are not this run's sample "
                         "(the same --space, --seed, --archs, --diverse and --width, or "
                         "--channels and --cells, are needed)")
    estimators = {label: {**row, **quality(np.array(row["scores"])), "scores_from": str(path)}
                  for label, row in old["estimators"].items()}
    return estimators, old["zico_cost_width_0.5"]


def run_estimators(args: argparse.Namespace, space: Space, data: Any, archs: list[Arch],
                   quality: Callable[[np.ndarray], dict[str, Any]]
                   ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Every estimator's scores of `archs` and their cost; the supernets are trained here."""
    estimators: dict[str, dict[str, Any]] = {}
    data_key = hashlib.sha1(data.source.encode()).hexdigest()[:8]
    space_key = hashlib.sha1(json.dumps([space.name, space.params]).encode()).hexdigest()[:8]

    def record(label: str, est: Any, extra: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        scores = est.score(archs)
        row = {"s_per_arch": (time.perf_counter() - t0) / len(archs), **extra,
               **quality(scores), "describe": est.describe(), "scores": scores.tolist()}
        estimators[label] = row
        print(f"[est] {label}: tau {row['kendall_tau']:.3f} ({row['s_per_arch']:.2f} s/arch)",
              flush=True)

    for name in ("params", "flops", "random", "zico"):
        record(name, get_estimator(name, space=space,
                                   **({"data": data} if name == "zico" else {})),
               {"train_s": 0.0})
    # The cost target: ZiCo at 32x32, batch 64, on the width-0.5 space too.
    wide = get_space("mbv2", resolution=32, width=0.5, classes=10)
    zico = get_estimator("zico", space=wide, data=data)
    wide_archs = [wide.sample(np.random.default_rng(100 + i)) for i in range(5)]
    t0 = time.perf_counter()
    zico.score(wide_archs)
    zico_cost = {"width": 0.5, "batch_size": 64, "archs": len(wide_archs),
                 "s_per_arch": (time.perf_counter() - t0) / len(wide_archs)}
    print(f"[est] zico cost at width 0.5: {zico_cost['s_per_arch']:.2f} s/arch", flush=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    for mode in [m for m in args.modes.split(",") if m]:
        # Keyed by the data too: a checkpoint of another data set is refused on resume.
        ckpt = args.workdir / f"supernet-{mode}-{space_key}-{data_key}.pt"
        meta = train_supernet(space, data, out=ckpt, settings=TrainSettings(mode=mode),
                              minutes=args.supernet_minutes)
        extra = {"train_s": meta.seconds, "train_steps": meta.step}
        if mode == "bn":
            record("bn[bn]", get_estimator("bn", space=space, checkpoint=ckpt), extra)
        record(f"supernet[{mode}]",
               get_estimator("supernet", space=space, checkpoint=ckpt, data=data,
                             calib_batches=args.calib_batches), extra)

    return estimators, zico_cost


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", choices=("mbv2", "nb201"), default="mbv2",
                    help="nb201: the NATS-Bench-TSS cell space of the ZiCo paper's claim")
    ap.add_argument("--width", type=float, default=0.25, help="mbv2's width multiplier")
    ap.add_argument("--channels", type=int, default=16, help="nb201's first-stage channels")
    ap.add_argument("--cells", type=int, default=1, help="nb201's cells per stage")
    ap.add_argument("--archs", type=int, default=12, help="seeded random sample size")
    ap.add_argument("--diverse", type=int, default=None,
                    help="diverse sample size (mbv2 only; default 6, and 0 for nb201)")
    ap.add_argument("--steps", type=int, default=60, help="ground-truth training steps")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--epochs", type=int, default=None,
                    help="train the ground truth with hwnas train's recipe for this many "
                         "epochs instead (--steps, --batch-size and --lr then unused)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random sample")
    ap.add_argument("--seeds", type=int, default=1,
                    help="training seeds per arch; the label is their mean accuracy")
    ap.add_argument("--seed-check", type=int, default=3,
                    help="archs retrained with seed 1 when --seeds is 1")
    ap.add_argument("--supernet-minutes", type=float, default=2.0)
    ap.add_argument("--calib-batches", type=int, default=4,
                    help="BN recalibration batches of the supernet estimator")
    ap.add_argument("--modes", default="spos,bn,pi", help="supernet modes to train")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default=None, help="ImageFolder dir or .npz (default: digits)")
    ap.add_argument("--gt", type=Path, default=RESULTS / "proxy_quality_gt.json")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/hwnas-proxy-quality"))
    ap.add_argument("--out", type=Path, default=RESULTS / "proxy_quality.json")
    ap.add_argument("--scores", type=Path, default=None,
                    help="rank another run's estimator scores (its --out JSON, same archs) "
                         "against these labels instead of running the estimators")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error(f"--seeds must be at least 1, got {args.seeds}")
    if args.epochs is not None and args.epochs < 1:
        ap.error(f"--epochs must be at least 1, got {args.epochs}")
    if args.diverse is None:
        args.diverse = 6 if args.space == "mbv2" else 0
    if args.space != "mbv2" and args.diverse:
        ap.error("--diverse: the diverse sample varies mbv2's skips and expansions; "
                 f"give 0 with --space {args.space}")
    torch.set_num_threads(args.threads)
    if args.space == "mbv2":
        space = get_space("mbv2", resolution=32, width=args.width, classes=10)
    else:
        space = get_space("nb201", resolution=32, channels=args.channels, cells=args.cells,
                          classes=10)
    data = load_dataset(args.data, resolution=32, seed=0)
    rng = np.random.default_rng(args.seed)
    sample = [("random", space.sample(rng)) for _ in range(args.archs)]
    sample += [("diverse", a) for a in diverse_sample(space, args.diverse, args.seed + 1)]
    seeds = {space.encode(a): max(args.seeds, 2 if i < args.seed_check else 1)
             for i, (_, a) in enumerate(sample)}
    if args.epochs is None:
        gt_settings = {"space": space.params, "data": data.source, "steps": args.steps,
                       "batch_size": args.batch_size, "lr": args.lr}
    else:
        recipe = Recipe().model_dump(exclude={"seed"})
        gt_settings = {"space": space.params, "data": data.source, "epochs": args.epochs,
                       "recipe": recipe}
    rows = ground_truth(space, data, sample, path=args.gt, settings=gt_settings, seeds=seeds)
    keys = [space.encode(a) for _, a in sample]
    archs = [a for _, a in sample]
    per_seed = np.array([[rows[k]["acc"][str(sd)] for sd in range(args.seeds)] for k in keys])
    truth = per_seed.mean(axis=1)
    twice = [k for k in keys if "1" in rows[k]["acc"]]
    noise = {"archs": len(twice)}
    if len(twice) >= 2:
        a0 = np.array([rows[k]["acc"]["0"] for k in twice])
        a1 = np.array([rows[k]["acc"]["1"] for k in twice])
        noise.update(rank_quality(a1, a0), mean_abs_diff=float(np.abs(a0 - a1).mean()))
    if args.seeds >= 2:
        noise["seed_sd"] = float(per_seed.std(axis=1, ddof=1).mean())

    subsets = {"random": slice(0, args.archs), "diverse": slice(args.archs, None)}

    def quality(scores: np.ndarray) -> dict[str, Any]:
        return {**rank_quality(scores, truth),
                "by_sample": {sub: rank_quality(scores[sl], truth[sl])
                              for sub, sl in subsets.items() if len(truth[sl]) >= 3}}

    if args.scores is not None:
        estimators, zico_cost = reuse_scores(args.scores, keys, quality)
    else:
        estimators, zico_cost = run_estimators(args, space, data, archs, quality)

    print(f"\nground truth: {len(keys)} archs, accuracy {truth.min():.3f}..{truth.max():.3f} "
          f"(mean {truth.mean():.3f}, each the mean of {args.seeds} seeds); "
          f"seed 0 vs 1 over {noise['archs']} archs: "
          f"tau {noise.get('kendall_tau', float('nan')):.3f}, "
          f"mean |diff| {noise.get('mean_abs_diff', float('nan')):.3f}")
    print(f"{'estimator':18s} {'tau':>6s} {'rho':>6s} {'tau rnd':>7s} {'tau div':>7s} "
          f"{'s/arch':>7s} {'train s':>8s}")
    for label, row in estimators.items():
        sub = {k: v["kendall_tau"] for k, v in row["by_sample"].items()}
        print(f"{label:18s} {row['kendall_tau']:6.3f} {row['spearman']:6.3f} "
              f"{sub.get('random', float('nan')):7.3f} {sub.get('diverse', float('nan')):7.3f} "
              f"{row['s_per_arch']:7.3f} {row['train_s']:8.0f}")
    report = {
        "schema_version": 1,
        "date": utc_now(),
        "host": {**host_facts(), "threads": args.threads, "torch": torch.__version__},
        "command": " ".join(["benchmarks/proxy_quality.py", *(argv or sys.argv[1:])]),
        "ground_truth": {**gt_settings, "archs": len(keys), "seeds": args.seeds,
                         "file": str(args.gt),
                         "accuracy": truth.tolist(), "keys": keys,
                         "acc_min": float(truth.min()), "acc_max": float(truth.max()),
                         "acc_mean": float(truth.mean()), "seed_noise": noise},
        "estimators": estimators,
        "zico_cost_width_0.5": zico_cost,
    }
    write_report(args.out, report, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
