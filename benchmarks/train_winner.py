"""Does the searched winner, trained, beat random archs trained the same way? (issue 8)

mbv2 (`--width`), deployed at 224x224 on this machine's onnxruntime CPU (1 thread) under
a latency budget (default: the median predicted latency of 200 random archs, so about
half of the space is feasible), accuracy on the bundled digits at 32x32:

1. **Search and ship**: `hwnas search`'s job (`search.api.run_search`) with ZiCo and
   `--train-minutes M`: the winner is trained M minutes, exported to ONNX, TFLite fp32
   and TFLite int8, and each file is run over the val split.
2. **Random baseline**: `--random` archs drawn uniformly among those predicted under the
   same budget, each trained M minutes with the same recipe, seed and resolutions (112 px,
   the last quarter at 224; `search.training.train_arch`) and torch threads
   (`--train-threads`, default torch's, for the search too): val accuracy (torch at 224,
   the same measure as the winner's `torch` entry). Before 2026-12-03 the randoms ran on
   1 thread and the search trained its winner on torch's 2, so the winner had up to 1.7x
   the epochs in `train_winner_epyc_b.json` and `train_winner_epyc_c.json`.
3. **int8**: the winner's TFLite int8 file against its fp32 file: val accuracy (each file
   run on LiteRT) and latency on LiteRT/XNNPACK at 224x224, 1 thread, timed in
   interleaved rounds (`search.deliver.measure_exported`).

Accuracy after M minutes depends on how fast this shared machine ran in those minutes
(the epochs column says how far each run got); run it on a quiet machine::

    flock /tmp/hwnas-cpu.lock .venv/bin/python benchmarks/train_winner.py \\
        --cache .cache/hwnas            # ~40 min: 6 runs of 5 minutes, search, exports

Prints a table and writes `benchmarks/results/train_winner.json`.

How much of a difference between two such runs is the training's own noise:
`--retrain RESULT.json --train-seed S` trains the winner of that earlier result and its
`--random` most accurate random archs again, the same way (the earlier run's width, budget
and train/val split) but with training seed S, and prints both runs' accuracies side by
side (no search, no export; `--random 1`: 2 runs, ~11 minutes).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _report import arguments, host_facts, utc_now, write_report

from profilers.device import DeviceProfile
from search.api import SearchSpec, TargetSpec, run_search
from search.data import Dataset, load_dataset
from search.deliver import measure_exported
from search.local import local_predictor
from search.ship import train_resolution
from search.training import torch_threads
from search.training.recipe import Recipe, TrainedArch, train_arch
from spaces import Arch, Space, get_space

OUT = Path(__file__).parent / "results" / "train_winner.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--budget-ms", type=float, default=None)
    parser.add_argument("--train-minutes", type=float, default=5.0)
    parser.add_argument("--random", type=int, default=5, help="random archs to train")
    parser.add_argument("--evaluations", type=int, default=40, help="ZiCo calls")
    parser.add_argument("--seed", type=int, default=0, help="search, split and sample")
    parser.add_argument("--train-seed", type=int, default=None,
                        help="with --retrain: the recipe's seed (default: --seed)")
    parser.add_argument("--train-threads", type=int, default=torch.get_num_threads(),
                        help="torch threads of the search and of every training run")
    parser.add_argument("--retrain", type=Path, default=None,
                        help="an earlier result: retrain its winner and best randoms")
    parser.add_argument("--cache", type=Path, default=Path(".cache/hwnas"))
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.train_seed is not None and args.retrain is None:
        # The winner is trained inside the search, with the search's seed.
        parser.error("--train-seed needs --retrain")
    if args.train_seed is None:
        args.train_seed = args.seed
    work = args.workdir or Path(tempfile.mkdtemp(prefix="hwnas-train-winner-"))
    if args.retrain is not None:
        try:
            before = json.loads(args.retrain.read_text())
            if not isinstance(before, dict) or before.get("benchmark") != "train_winner":
                raise ValueError("not a train_winner.py result")
        except (OSError, ValueError) as err:
            parser.error(f"--retrain: {args.retrain}: {err}")
        return _retrain(before, args, work)
    started = time.monotonic()

    data = load_dataset(None, resolution=32, seed=args.seed)
    device = DeviceProfile(name="onnxruntime", backend="onnxruntime", threads=1,
                           resolution=224, hardware="this machine")
    deploy = get_space("mbv2", resolution=224, width=args.width, classes=data.classes)
    size = train_resolution(224)
    train_space = get_space("mbv2", resolution=size, width=args.width, classes=data.classes)
    train_data = load_dataset(None, resolution=size, seed=args.seed)
    predictor = local_predictor(deploy, device, args.cache)
    rng = np.random.default_rng(args.seed)
    sample = [deploy.sample(rng) for _ in range(200)]
    predicted = predictor.predict(sample)
    budget = args.budget_ms or float(np.median(predicted))
    print(f"budget {budget:.2f} ms (onnxruntime, 224x224, 1 thread); training "
          f"{args.train_minutes:g} min per arch; workdir {work}", flush=True)

    spec = SearchSpec(space="mbv2", space_params={"width": args.width},
                      targets=[TargetSpec(device=device, budget_ms=budget)],
                      estimator="zico", strategy="evolution", evaluations=args.evaluations,
                      seed=args.seed, cache_dir=str(args.cache),
                      train_minutes=args.train_minutes)
    # The search trains its winner on torch's threads as set: the same as every random.
    with torch_threads(args.train_threads):
        report = run_search(spec, work / "search",
                            progress=lambda f, m: print(f"  search {f:4.0%} {m}", flush=True))
    training = report.training or {}
    winner = {"arch": report.arch, "score": report.score,
              "predicted_ms": report.targets[0].predicted_ms,
              "measured_ms": report.targets[0].measured.get("median_ms"),
              "val_accuracy": training["val_accuracy"]["torch"],
              "files_accuracy": training["val_accuracy"], "epochs": training["epochs"],
              "seconds": training["seconds"]}
    print(f"winner {winner['val_accuracy']:.2%} after {winner['epochs']} epochs", flush=True)

    feasible = [a for a, ms in zip(sample, predicted, strict=True) if ms <= budget]
    picks = [feasible[i] for i in rng.choice(len(feasible), size=args.random, replace=False)]
    randoms = []
    for number, arch in enumerate(picks):
        run = _train(train_space, arch, train_data, work / "random" / str(number), args)
        randoms.append({"arch": deploy.encode(arch),
                        "predicted_ms": float(predictor.predict([arch])[0]),
                        "val_accuracy": run.meta.val_accuracy, "epochs": run.meta.epoch,
                        "seconds": round(run.meta.seconds, 1)})
        print(f"random {number}: {run.meta.val_accuracy:.2%} after {run.meta.epoch} "
              f"epochs", flush=True)

    int8 = _int8(work / "search", training)
    best_random = max(r["val_accuracy"] for r in randoms)
    result = {
        **_header("train_winner", args), "winner": winner, "random": randoms,
        "best_random_accuracy": best_random,
        "winner_beats_best_random": winner["val_accuracy"] > best_random,
        "int8": int8, "seconds": round(time.monotonic() - started, 1)}
    result["settings"]["budget_ms"] = budget
    _print(result)
    write_report(args.out, result)
    return 0


def _header(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """A result's benchmark name, date, host and settings (the arguments)."""
    return {"benchmark": name, "date": utc_now(), "host": host_facts(),
            "settings": arguments(args)}


def _train(space: Space, arch: Arch, data: Dataset, out: Path,
           args: argparse.Namespace) -> TrainedArch:
    """One arch trained as the winner is: `args.train_minutes` on `args.train_threads`
    torch threads, the last quarter at 224 px."""
    with torch_threads(args.train_threads):
        return train_arch(space, arch, data, out=out, minutes=args.train_minutes,
                          recipe=Recipe(seed=args.train_seed), final_resolution=224)


def _retrain(before: dict[str, Any], args: argparse.Namespace, work: Path) -> int:
    """The winner and the `args.random` best randoms of the result `before`, trained again."""
    earlier_seed = before["settings"].get("train_seed", before["settings"]["seed"])
    # The same split, width and budget as the earlier run: only the training seed changes.
    args.seed, args.width, args.train_minutes = (before["settings"][k] for k in
                                                 ("seed", "width", "train_minutes"))
    data = load_dataset(None, resolution=train_resolution(224), seed=args.seed)
    space = get_space("mbv2", resolution=data.resolution, width=args.width,
                      classes=data.classes)
    best = sorted(enumerate(before["random"]), key=lambda nr: -nr[1]["val_accuracy"])
    runs = []
    for name, earlier in [("winner", before["winner"]),
                          *((f"random {n}", r) for n, r in best[:args.random])]:
        run = _train(space, space.decode(earlier["arch"]), data, work / name.replace(" ", "-"),
                     args)
        runs.append({"name": name, "arch": earlier["arch"],
                     "earlier": {"val_accuracy": earlier["val_accuracy"],
                                 "epochs": earlier["epochs"]},
                     "val_accuracy": run.meta.val_accuracy, "epochs": run.meta.epoch,
                     "seconds": round(run.meta.seconds, 1)})
        print(f"{name}: {run.meta.val_accuracy:.2%} after {run.meta.epoch} epochs "
              f"(earlier {earlier['val_accuracy']:.2%}, {earlier['epochs']} epochs)", flush=True)
    result = {**_header("train_winner --retrain", args), "earlier_seed": earlier_seed,
              "runs": runs}
    print(f"\n| arch | seed {earlier_seed} | seed {args.train_seed} | epochs |"
          "\n|---|---|---|---|")
    for r in runs:
        print(f"| {r['name']} | {r['earlier']['val_accuracy']:.2%} | {r['val_accuracy']:.2%} | "
              f"{r['earlier']['epochs']}, {r['epochs']} |")
    write_report(args.out, result)
    return 0


def _int8(folder: Path, training: dict[str, Any]) -> dict[str, Any]:
    """The winner's int8 and fp32 TFLite files: accuracy and interleaved LiteRT timing."""
    devices = [DeviceProfile(name=f"litert-{p}", backend="tflite", precision=p, threads=1,
                             resolution=224, hardware="this machine")
               for p in ("fp32", "int8")]
    timed = measure_exported(folder, devices, runs=100)
    acc = training["val_accuracy"]
    fp32_ms, int8_ms = (timed[f"litert-{p}"].get("median_ms") for p in ("fp32", "int8"))
    return {"fp32_accuracy": acc.get("tflite"), "int8_accuracy": acc.get("tflite-int8"),
            "drop_points": 100 * (acc["tflite"] - acc["tflite-int8"]),
            "fp32_ms": fp32_ms, "int8_ms": int8_ms,
            "int8_over_fp32": int8_ms / fp32_ms if fp32_ms and int8_ms else None,
            "timing": timed}


def _print(r: dict[str, Any]) -> None:
    print("\n| arch | predicted ms | epochs | val accuracy |\n|---|---|---|---|")
    w = r["winner"]
    print(f"| winner `{w['arch'][:40]}...` | {w['predicted_ms']:.2f} | {w['epochs']} | "
          f"{w['val_accuracy']:.2%} |")
    for n, x in enumerate(r["random"]):
        print(f"| random {n} | {x['predicted_ms']:.2f} | {x['epochs']} | "
              f"{x['val_accuracy']:.2%} |")
    i = r["int8"]
    print(f"\nwinner beats the best random: {r['winner_beats_best_random']} "
          f"({w['val_accuracy']:.2%} vs {r['best_random_accuracy']:.2%})")
    print(f"int8 vs fp32 TFLite: accuracy {i['int8_accuracy']:.2%} vs {i['fp32_accuracy']:.2%} "
          f"({-i['drop_points']:+.2f} points); LiteRT/XNNPACK {i['int8_ms']:.2f} ms vs "
          f"{i['fp32_ms']:.2f} ms ({i['int8_over_fp32']:.2f}x)")


if __name__ == "__main__":
    raise SystemExit(main())
