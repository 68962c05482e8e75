"""`report.json` (a versioned `SearchReport`) and its human-readable twin `report.md`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

REPORT_VERSION = 2


class TargetResult(BaseModel):
    """One device: its budget, the winner's predicted and (where it runs here) measured ms."""

    model_config = ConfigDict(extra="forbid")

    device: str
    backend: str
    budget_ms: float
    predicted_ms: float
    predicted_std_ms: float | None
    # The prediction plus the search's margin (`SearchSpec.margin_sigmas`): what the budget
    # was checked on.
    bound_ms: float | None = None
    measured: dict[str, Any]
    error_vs_predicted: float | None
    within_budget_predicted: bool
    within_budget_measured: bool | None


class SearchReport(BaseModel):
    """What a search found and how it got there (documented in docs/formats.md)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = REPORT_VERSION
    arch: str
    space: str
    deploy_params: dict[str, Any]
    score: float
    estimator: str
    data: str
    strategy: str
    num_params: int
    flops: int
    targets: list[TargetResult]
    stages: list[dict[str, Any]]
    evaluations: int
    tailored: list[dict[str, Any]] | None
    pareto: list[dict[str, Any]]
    files: dict[str, dict[str, Any]]
    trained: bool
    training: dict[str, Any] | None = None
    candidates: list[dict[str, Any]] = []
    seconds: float
    spec: dict[str, Any]

    @classmethod
    def build(cls, *, spec: Any, deploy: Any, outcome: Any, budget: Any,
              files: dict[str, dict[str, Any]], measured: dict[str, dict[str, Any]],
              tailoring: Any, estimator: str, data: str, seconds: float,
              chosen: tuple[Any, float] | None = None, training: Any = None,
              candidates: list[dict[str, Any]] | None = None) -> SearchReport:
        """`chosen` (arch, score) replaces the search's best when training picked another
        candidate; `training` is the `search.ship.TrainingResult` of the shipped files."""
        import torch

        from models import build, count_flops, count_params

        best, score = chosen or (outcome.best, outcome.best_score)
        latency = {name: float(v[0]) for name, v in budget.latencies([best]).items()}
        bound = {name: float(v[0]) for name, v in budget.bounds([best]).items()}
        net = build(deploy, best).eval()
        with torch.no_grad():
            flops = count_flops(net, net.example_input())
        targets = []
        for t in budget.targets:
            predicted = latency[t.name]
            std = getattr(t.predictor, "predict_std", None)
            got = measured.get(t.name, {"measured": False, "reason": "not timed"})
            # Compare with the prediction at the machine speed the LUT was measured at,
            # when the profiling run's reference cell was timed beside the file.
            ms = got.get("drift_corrected_ms", got.get("median_ms"))
            targets.append(TargetResult(
                device=t.name, backend=next(s.device.backend for s in spec.targets
                                            if s.device.name == t.name),
                budget_ms=t.budget_ms, predicted_ms=predicted,
                predicted_std_ms=float(std([best])[0]) if callable(std) else None,
                bound_ms=bound[t.name],
                measured=got, error_vs_predicted=(predicted / ms - 1.0) if ms else None,
                within_budget_predicted=bound[t.name] <= t.budget_ms,
                within_budget_measured=(ms <= t.budget_ms) if ms else None))
        return cls(
            arch=deploy.encode(best), space=deploy.name, deploy_params=deploy.params,
            score=score, estimator=estimator, data=data, strategy=spec.strategy,
            num_params=count_params(net), flops=int(flops), targets=targets,
            stages=[vars(s) for s in outcome.stages], evaluations=len(outcome.evaluated),
            tailored=tailoring.summary() if tailoring is not None else None,
            pareto=outcome.pareto, files=files, trained=training is not None,
            training=training.model_dump(mode="json") if training is not None else None,
            candidates=candidates or [], seconds=round(seconds, 2),
            spec=spec.model_dump(mode="json"))


def write_reports(out: Path, report: SearchReport) -> None:
    """`report.json` and `report.md` in `out`."""
    (out / "report.json").write_text(report.model_dump_json(indent=2) + "\n")
    (out / "report.md").write_text(markdown(report))


def markdown(r: SearchReport) -> str:
    """A short human-readable report."""
    lines = [
        f"# hwnas search: {r.space} {r.deploy_params}", "",
        f"Best arch: `{r.arch}`", "",
        f"- estimator score {r.score:.4g} ({r.estimator.splitlines()[0]})",
        f"- {r.num_params:,} params, {r.flops / 1e6:,.1f} MFLOPs",
        f"- strategy {r.strategy}, {r.evaluations} estimator calls, {r.seconds:.0f} s",
        _weights(r),
        "", "## Latency", "",
        "| device | backend | budget ms | predicted ms | measured ms | error | within budget |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in r.targets:
        pred = f"{t.predicted_ms:.2f}" + (f" ± {t.predicted_std_ms:.2f}"
                                          if t.predicted_std_ms is not None else "")
        ms = t.measured.get("median_ms")
        meas = f"{ms:.2f}" if ms else f"not timed ({t.measured.get('reason', '')})"
        if "drift_corrected_ms" in t.measured:
            meas += f" ({t.measured['drift_corrected_ms']:.2f} at profiling speed)"
        err = f"{t.error_vs_predicted:+.1%}" if t.error_vs_predicted is not None else "-"
        ok = t.within_budget_measured if t.within_budget_measured is not None \
            else t.within_budget_predicted
        lines.append(f"| {t.device} | {t.backend} | {t.budget_ms:g} | {pred} | {meas} | {err} "
                     f"| {'yes' if ok else 'NO'} |")
    lines += ["", "## Stages", "", "| stage | slots | evaluations | seconds | best score |",
              "|---|---|---|---|---|"]
    for s in r.stages:
        lines.append(f"| {s['name']} | {len(s['slots'])} | {s['evaluations']} | "
                     f"{s['seconds']:.1f} | {s['best_score']:.4g} |")
    lines += ["", f"## Pareto front ({len(r.pareto)} archs, predicted worst-device budget "
              "ratio vs score)", "", "| ratio | score | arch |", "|---|---|---|"]
    for p in r.pareto:
        lines.append(f"| {p['ratio']:.3f} | {p['score']:.4g} | `{p['arch']}` |")
    if r.candidates:
        lines += ["", "## Trained candidates", "", "| arch | score | val accuracy | epochs "
                  "| shipped |", "|---|---|---|---|---|"]
        for c in r.candidates:
            lines.append(f"| `{c['arch']}` | {c['score']:.4g} | {c['val_accuracy']:.2%} | "
                         f"{c['epochs']} | {'yes' if c['chosen'] else ''} |")
    accuracy = (r.training or {}).get("val_accuracy", {})
    lines += ["", "## Files", "", "| file | MB | error vs torch | val accuracy | ok |",
              "|---|---|---|---|---|"]
    for fmt, f in r.files.items():
        acc = f"{accuracy[fmt]:.2%}" if fmt in accuracy else "-"
        lines.append(f"| {f['path']} | {f['bytes'] / 1e6:.2f} | {f['rel_err']:.2e} | {acc} | "
                     f"{'yes' if f['ok'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def _weights(r: SearchReport) -> str:
    if r.training is None:
        return ("- weights: untrained (initialised, BN statistics from data): exported for "
                "latency and deployment checks")
    t = r.training
    return (f"- weights: trained {t['epochs']} epochs ({t['seconds']:.0f} s) on {t['data']}; "
            f"val accuracy {t['val_accuracy']['torch']:.2%} (torch); see model_card.md")
