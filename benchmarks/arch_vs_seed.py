"""How much of `train_winner`'s accuracy is the arch, and how much the training seed? (issue 8)

Reads one `benchmarks/train_winner.py` result and its `--retrain` results (the same archs,
other training seeds) and treats the accuracies as a one-way random-effects design, archs
as groups and seeds as replicates:

- per arch: the seeds, the mean and the standard deviation over seeds;
- a one-way ANOVA over the archs with 2 seeds or more (scipy's `f_oneway`): is there an arch
  effect at all?
- the variance components: the arch effect's standard deviation (between archs, with the
  seed noise taken out; 0 when the archs differ less than seeds do) and the seed noise's,
  and ICC(1), the share of a run's variance that is the arch's;
- per seed with the winner and every random arch trained: whether the winner beat the best;
- a simulation of the benchmark's question under those components (normal arch effects and
  seed noise, accuracies rounded to the val split's steps, a tie is not a win): how often
  a winner that is an arch like any other beats the best of `--random` randoms in one run,
  and how far above the average arch its true accuracy would have to be for it to win in
  half and in nine of ten runs.

Prints a table and writes `benchmarks/results/arch_vs_seed.json`::

    .venv/bin/python benchmarks/arch_vs_seed.py benchmarks/results/train_winner_epyc_e.json \\
        --retrains benchmarks/results/train_winner_epyc_e_seed{1,2,3}.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from _report import arguments, utc_now, write_report
from scipy import stats

from search.data import load_dataset

OUT = Path(__file__).parent / "results" / "arch_vs_seed.json"
Table = dict[str, dict[str, Any]]


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SystemExit(f"error: {path}: {err}") from None


def collect(result: dict[str, Any], retrains: list[dict[str, Any]]) -> Table:
    """{name: {"arch", "seeds": {seed: val accuracy}}} over the result and its retrains."""
    if result.get("benchmark") != "train_winner":
        raise SystemExit("error: RESULT: not a train_winner result (its 'benchmark' key)")
    seed = int(result["settings"]["train_seed"])
    table: Table = {"winner": {"arch": result["winner"]["arch"],
                               "seeds": {seed: result["winner"]["val_accuracy"]}}}
    for i, run in enumerate(result["random"]):
        table[f"random {i}"] = {"arch": run["arch"], "seeds": {seed: run["val_accuracy"]}}
    for retrain in retrains:
        if retrain.get("benchmark") != "train_winner --retrain":
            raise SystemExit("error: --retrains: not a train_winner --retrain result")
        again = int(retrain["settings"]["train_seed"])
        for run in retrain["runs"]:
            row = table.get(run["name"])
            if row is None or row["arch"] != run["arch"]:
                raise SystemExit(f"error: --retrains: {run['name']} is not an arch of RESULT")
            row["seeds"][again] = run["val_accuracy"]
    return table


def components(table: Table) -> dict[str, Any]:
    """One-way random-effects ANOVA over the archs with 2 seeds or more."""
    groups = [np.array(list(r["seeds"].values())) for r in table.values() if len(r["seeds"]) > 1]
    if len(groups) < 2:
        raise SystemExit("error: need 2 archs or more with 2 seeds or more: pass --retrains")
    sizes = np.array([len(g) for g in groups])
    n, a = sizes.sum(), len(groups)
    grand = np.concatenate(groups).mean()
    msb = sum(len(g) * (g.mean() - grand) ** 2 for g in groups) / (a - 1)
    msw = sum(((g - g.mean()) ** 2).sum() for g in groups) / (n - a)
    # The mean group size, corrected for unequal groups (Searle et al. 1992).
    k0 = (n - (sizes ** 2).sum() / n) / (a - 1)
    test = stats.f_oneway(*groups)
    return {"archs": a, "runs": int(n), "f": float(test.statistic), "p": float(test.pvalue),
            "icc": float((msb - msw) / (msb + (k0 - 1) * msw)),
            "arch_sd": float(np.sqrt(max(0.0, (msb - msw) / k0))),
            "seed_sd": float(np.sqrt(msw)), "mean": float(grand)}


def contests(table: Table) -> list[dict[str, Any]]:
    """Each seed at which the winner and every random arch were trained."""
    randoms = [r for name, r in table.items() if name != "winner"]
    out = []
    for seed, won in sorted(table["winner"]["seeds"].items()):
        if all(seed in r["seeds"] for r in randoms):
            best = max(r["seeds"][seed] for r in randoms)
            out.append({"seed": seed, "winner": won, "best_random": best, "beats": won > best})
    return out


def win_rate(advantage: float, *, arch_sd: float, seed_sd: float, mean: float, randoms: int,
             val: int, rng: np.random.Generator, trials: int) -> float:
    """P(winner > best of `randoms`) when its true accuracy is `advantage` above the mean."""
    true = mean + arch_sd * rng.standard_normal((trials, randoms + 1))
    true[:, 0] = mean + advantage
    run = np.clip(true + seed_sd * rng.standard_normal(true.shape), 0.0, 1.0)
    steps = np.round(run * val)
    return float((steps[:, 0] > steps[:, 1:].max(axis=1)).mean())


def needed(target: float, **kw: Any) -> float | None:
    """The smallest advantage on a 0.05-point grid up to 10 points that wins `target` of runs."""
    for advantage in np.arange(0.0, 0.1 + 1e-9, 0.0005):
        if win_rate(float(advantage), **kw) >= target:
            return float(advantage)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", type=Path, help="a benchmarks/train_winner.py result")
    parser.add_argument("--retrains", type=Path, nargs="+", default=[],
                        help="its train_winner.py --retrain results")
    parser.add_argument("--trials", type=int, default=100_000, help="simulated runs")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error("--trials must be a positive integer")
    result = _read(args.result)
    table = collect(result, [_read(p) for p in args.retrains])
    fit = components(table)
    settings = result["settings"]
    val = len(load_dataset(None, resolution=32, seed=int(settings["seed"])).y_val)
    kw = {"arch_sd": fit["arch_sd"], "seed_sd": fit["seed_sd"], "mean": fit["mean"],
          "randoms": len(result["random"]), "val": val,
          "rng": np.random.default_rng(0), "trials": args.trials}
    simulated = {"like_any_arch": win_rate(0.0, **kw), "val_images": val,
                 "advantage_for_half": needed(0.5, **kw), "advantage_for_90": needed(0.9, **kw)}
    for row in table.values():
        accs = np.array(list(row["seeds"].values()))
        row["mean"] = float(accs.mean())
        row["sd"] = float(accs.std(ddof=1)) if len(accs) > 1 else None
    payload = {"benchmark": "arch_vs_seed", "date": utc_now(), "settings": arguments(args),
               "archs": table, "anova": fit, "contests": contests(table),
               "simulated": simulated}
    _print(payload)
    write_report(args.out, payload)
    return 0


def _pts(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _print(p: dict[str, Any]) -> None:
    seeds = sorted({s for r in p["archs"].values() for s in r["seeds"]})
    print(f"{'arch':<10}" + "".join(f"  seed {s:<3}" for s in seeds) + "    mean     sd")
    for name, row in p["archs"].items():
        cells = "".join(f"  {_pts(row['seeds'].get(s)):>8}" for s in seeds)
        print(f"{name:<10}{cells}  {_pts(row['mean']):>6}  {_pts(row['sd']):>5}")
    f, s = p["anova"], p["simulated"]
    print(f"\narch effect: F {f['f']:.2f}, p {f['p']:.2f} ({f['archs']} archs, {f['runs']} runs); "
          f"ICC {f['icc']:.2f}; arch sd {_pts(f['arch_sd'])} points, seed sd "
          f"{_pts(f['seed_sd'])} points")
    for c in p["contests"]:
        print(f"seed {c['seed']}: winner {_pts(c['winner'])}, best random {_pts(c['best_random'])}"
              f" -> {'beats' if c['beats'] else 'does not beat'}")
    print(f"simulated ({s['val_images']} val images): a winner like any arch beats the best "
          f"random in {100 * s['like_any_arch']:.0f}% of runs; it must be "
          f"{_pts(s['advantage_for_half'])} points above the average arch to win half, "
          f"{_pts(s['advantage_for_90'])} for 9 runs in 10")


if __name__ == "__main__":
    sys.exit(main())
