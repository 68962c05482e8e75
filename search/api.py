"""One search job end to end: the spec, the run, the report (what the CLI and service call).

`run_search(spec, out_dir)`:

1. builds the deployment space (the device's resolution, the data's classes) and the
   estimation space (small resolution for the data), which share arch strings;
2. loads each target's latency predictor, or profiles this machine for it
   (`search.local`), and checks that the budgets are reachable;
3. tailors the space to the devices (HURRICANE's generator, `search.tailor`);
4. runs the two-stage search (or one stage) with the chosen strategy and estimator,
   checkpointing to `out_dir/search_state.json` so a second call resumes;
5. with `train_minutes` (or `train_epochs`), trains the winner and the `train_top - 1`
   best feasible runners-up of the Pareto front (`search.training.train_arch`, each with
   that budget, initialised from the supernet when the estimator has one) and ships
   the one with the best val accuracy (`search.ship`); without it, the exported files
   hold initialised weights, for latency and deployment checks, and the report says so;
6. exports the shipped arch (`search.deliver`), times each device's file where it runs
   here, and writes `report.json` (`SearchReport`), `report.md` and, when trained,
   `model_card.md`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from profilers.device import DeviceProfile
from spaces import get_space

from .constraints import LatencyBudget, Target
from .driver import SearchCancelled, SearchConfig, one_stage, two_stage
from .protocols import AccuracyEstimator
from .report import SearchReport, write_reports

SPEC_VERSION = 1
Progress = Callable[[float, str], None]
Wrapper = Callable[[AccuracyEstimator], AccuracyEstimator]
DEFAULT_CACHE = Path.home() / ".cache" / "hwnas"


class TargetSpec(BaseModel):
    """One device of a search and its budget."""

    model_config = ConfigDict(extra="forbid")

    device: DeviceProfile
    budget_ms: float = Field(gt=0, allow_inf_nan=False)
    predictor: str | None = Field(
        default=None, description="A fitted latency predictor JSON; None profiles this "
        "machine with the device's settings (cached).")


class SearchSpec(BaseModel):
    """Everything a search needs; versioned, so a job stored today replays tomorrow."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SPEC_VERSION
    space: str = "mbv2"
    space_params: dict[str, Any] = Field(
        default_factory=dict, description="Space parameters other than resolution and "
        "classes (those come from the device and the data), e.g. {\"width\": 0.5}.")
    targets: list[TargetSpec] = Field(min_length=1, max_length=8)
    estimator: str = "zico"
    checkpoint: str | None = Field(default=None,
                                   description="Supernet checkpoint for bn/supernet.")
    strategy: str = "evolution"
    strategy_options: dict[str, Any] = Field(default_factory=dict)
    evaluations: int = Field(default=200, ge=4, le=100_000)
    batch: int = Field(default=16, ge=1, le=1024)
    stages: Literal[1, 2] = 2
    split: int | None = Field(default=None, ge=1)
    tailor_keep: int | None = Field(default=8, ge=2,
                                    description="Ops kept per slot; None: no tailoring.")
    data: str | None = None
    estimation_resolution: int = Field(default=32, ge=8, le=512)
    formats: list[Literal["onnx", "tflite", "tflite-int8", "openvino"]] = Field(
        default_factory=lambda: ["onnx", "tflite", "tflite-int8"])
    seed: int = 0
    margin_sigmas: float = Field(
        default=1.0, ge=0, le=10, allow_inf_nan=False,
        description="Each budget must hold at the predicted latency plus this many of the "
        "predictor's standard deviations (0: at the prediction itself).")
    cache_dir: str | None = None
    train_minutes: float | None = Field(
        default=None, gt=0, le=24 * 60, allow_inf_nan=False,
        description="Train each shipped candidate this many minutes after the search; "
        "None: export initialised weights.")
    train_epochs: int | None = Field(
        default=None, ge=1, le=10_000, description="Instead of train_minutes: an epoch "
        "budget (reproducible run to run, whatever the machine's speed).")
    train_resolution: int | None = Field(
        default=None, ge=8, le=1024, description="Input size training runs at; None: "
        "half the deployment resolution, at least 64 (`search.ship.train_resolution`).")
    train_top: int = Field(default=1, ge=1, le=8, description="Candidates trained: the "
                           "winner and the best feasible runners-up of the Pareto front.")

    @property
    def cache_root(self) -> Path:
        """Where this machine's profiling runs are cached."""
        return Path(self.cache_dir) if self.cache_dir else DEFAULT_CACHE

    @model_validator(mode="after")
    def _targets(self) -> SearchSpec:
        fixed = sorted({"resolution", "classes"} & set(self.space_params))
        if fixed:
            raise ValueError(f"space_params: {fixed[0]!r} is set by the device and the data, "
                             "not here")
        names = [t.device.name for t in self.targets]
        if len(set(names)) != len(names):
            raise ValueError(f"targets: device names must be unique, got {names}")
        resolutions = {t.device.resolution for t in self.targets}
        if len(resolutions) > 1:
            raise ValueError("targets: all devices of one search must take one input "
                             f"resolution, got {sorted(resolutions)}")
        if self.train_minutes is not None and self.train_epochs is not None:
            raise ValueError("train_minutes/train_epochs: give one training budget, not both")
        return self


def run_search(spec: SearchSpec, out_dir: Path, *, progress: Progress | None = None,
               should_stop: Callable[[], bool] | None = None,
               estimator_wrapper: Wrapper | None = None,
               command: str | None = None) -> SearchReport:
    """Run (or resume) the search `spec` describes, writing everything into `out_dir`.

    `estimator_wrapper`, if given, wraps the spec's estimator before any arch is scored
    (the service's Ray executor passes one that scores on the cluster).

    `command` is the command line the model card gives to reproduce the run (default:
    `hwnas search --spec OUT/spec.json -o OUT`).

    Raises:
        SearchCancelled: `should_stop` returned True; calling again resumes.
        UnreachableBudgetError: A budget below the fastest arch (its latency named).
        ValueError: A bad spec part (unknown strategy or estimator, data, predictor).
    """
    report = progress or (lambda fraction, message: None)
    stop = should_stop or (lambda: False)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "spec.json").write_text(spec.model_dump_json(indent=2))
    started = time.monotonic()
    data = _dataset(spec)
    deploy = get_space(spec.space, **_space_params(spec, spec.targets[0].device.resolution,
                                                   data.classes))
    estimate = get_space(spec.space, **_space_params(spec, spec.estimation_resolution,
                                                     data.classes))
    budget = _budget(spec, deploy, report, stop)
    if stop():
        raise SearchCancelled("search cancelled before it started")
    estimator = _estimator(spec, estimate, data)
    if estimator_wrapper is not None:
        estimator = estimator_wrapper(estimator)  # e.g. scored on a Ray cluster
    from .tailor import tailor

    config = SearchConfig(strategy=spec.strategy, evaluations=spec.evaluations,
                          batch=spec.batch, split=spec.split, seed=spec.seed,
                          strategy_options=spec.strategy_options)
    run = two_stage if spec.stages == 2 else one_stage

    def search_progress(fraction: float, message: str) -> None:
        report(0.1 + 0.75 * fraction, message)

    try:
        space, tailoring = estimate, None
        if spec.tailor_keep is not None:
            report(0.05, "tailoring the space to the devices")
            tailoring = tailor(estimate, estimator, budget, keep=spec.tailor_keep)
            space = tailoring.space
        outcome = run(space, estimator, budget, config, progress=search_progress,
                      should_stop=stop, checkpoint=out_dir / "search_state.json")
    finally:
        # A cluster wrapper holds one Ray actor per cluster CPU; export, timing and
        # training score nothing, so the CPUs go back to the cluster now.
        close = getattr(estimator, "close", None)
        if close is not None:
            close()
    from .deliver import calibration_images, export_winner, measure_exported
    from .local import cache_dir

    formats = list(dict.fromkeys(spec.formats))
    chosen, training, candidates = None, None, None
    if spec.train_minutes is not None or spec.train_epochs is not None:
        from .ship import export_trained

        trained, chosen, candidates, train_data = _train(spec, deploy, outcome, out_dir,
                                                         report, stop)
        report(0.94, f"exporting the trained {trained.meta.arch}")
        training, files = export_trained(trained, deploy, train_data, out_dir,
                                         formats=formats)
    else:
        report(0.86, f"exporting {deploy.encode(outcome.best)}")
        calibration = calibration_images(data, deploy.params["resolution"], seed=spec.seed,
                                         count=32)
        files = export_winner(deploy, outcome.best, out_dir, formats=formats,
                              calibration=calibration, seed=spec.seed)
    report(0.96, "timing the exported files")
    profiles = {t.device.name: cache_dir(spec.cache_root, deploy, t.device)
                for t in spec.targets
                if t.predictor is None}
    measured = measure_exported(out_dir, [t.device for t in spec.targets], profiles=profiles)
    result = SearchReport.build(spec=spec, deploy=deploy, outcome=outcome, budget=budget,
                                files=files, measured=measured, tailoring=tailoring,
                                estimator=estimator.describe(), data=data.describe(),
                                seconds=time.monotonic() - started, chosen=chosen,
                                training=training, candidates=candidates)
    write_reports(out_dir, result)
    if training is not None:
        _write_card(out_dir, spec, result, training, command)
    report(1.0, "done")
    return result


def _train(spec: SearchSpec, deploy: Any, outcome: Any, out_dir: Path, report: Progress,
           stop: Callable[[], bool]
           ) -> tuple[Any, tuple[Any, float], list[dict[str, Any]], Any]:
    """Train the winner and the runners-up at the training resolution; returns the most
    accurate one, its (arch, score), one summary per candidate, and the training data."""
    from .data import load_dataset
    from .ship import check_same_topology, train_resolution
    from .training.recipe import Recipe, TrainingCancelled, train_arch

    resolution = spec.train_resolution or train_resolution(deploy.params["resolution"])
    data = load_dataset(spec.data, resolution=resolution, seed=spec.seed)
    space = get_space(spec.space, **_space_params(spec, resolution, data.classes))
    check_same_topology(space, deploy)

    best = space.encode(outcome.best)
    runners = sorted((p for p in outcome.pareto if p["feasible"] and p["arch"] != best),
                     key=lambda p: -p["score"])
    picks = [(best, outcome.best_score)] + [(p["arch"], p["score"])
                                            for p in runners[:spec.train_top - 1]]
    # The supernet's weights seed training when it was trained in this very space.
    init = spec.checkpoint if spec.estimator in ("bn", "supernet") \
        and resolution == spec.estimation_resolution else None
    results = []
    for number, (arch, _) in enumerate(picks):
        def step(status: Any, _n: int = number) -> None:
            val = status.val_accuracy
            report(0.86 + 0.08 * (_n + status.fraction) / len(picks),
                   f"training {_n + 1}/{len(picks)}: epoch {status.epoch}, val "
                   + (f"{val:.1%}" if val is not None else "-"))

        try:
            results.append(train_arch(space, space.decode(arch), data,
                                      out=out_dir / "train" / str(number),
                                      minutes=spec.train_minutes, epochs=spec.train_epochs,
                                      recipe=Recipe(seed=spec.seed),
                                      final_resolution=int(deploy.params["resolution"]),
                                      init=init, progress=step, cancel=stop))
        except TrainingCancelled:
            raise SearchCancelled("search cancelled while training; the checkpoints are "
                                  "kept") from None
    top = max(range(len(results)), key=lambda i: results[i].meta.val_accuracy or 0.0)
    candidates = [{"arch": arch, "score": score, "val_accuracy": r.meta.val_accuracy,
                   "epochs": r.meta.epoch, "seconds": round(r.meta.seconds, 2),
                   "chosen": i == top}
                  for i, ((arch, score), r) in enumerate(zip(picks, results, strict=True))]
    return results[top], (deploy.decode(picks[top][0]), picks[top][1]), candidates, data


def _write_card(out_dir: Path, spec: SearchSpec, result: SearchReport, training: Any,
                command: str | None) -> None:
    import shlex

    from .ship import latency_rows, model_card

    origin = {"strategy": spec.strategy, "estimator": spec.estimator, "score": result.score,
              "evaluations": result.evaluations,
              "devices": [{"name": t.device, "backend": t.backend, "budget_ms": t.budget_ms}
                          for t in result.targets]}
    rows = latency_rows({t.device: t.measured for t in result.targets},
                        {t.device: t.predicted_ms for t in result.targets},
                        {t.device: t.budget_ms for t in result.targets})
    default = shlex.join(["hwnas", "search", "--spec", str(out_dir / "spec.json"),
                          "-o", str(out_dir)])
    (out_dir / "model_card.md").write_text(model_card(
        space=result.space, training=training, latency=rows, origin=origin,
        command=command or default))


def _space_params(spec: SearchSpec, resolution: int, classes: int) -> dict[str, object]:
    return {**spec.space_params, "resolution": resolution, "classes": classes}


def _dataset(spec: SearchSpec) -> Any:
    from .data import load_dataset

    return load_dataset(spec.data, resolution=spec.estimation_resolution, seed=spec.seed)


def _budget(spec: SearchSpec, deploy: Any, report: Progress,
            stop: Callable[[], bool]) -> LatencyBudget:
    from latency import load_predictor

    from .local import local_predictor

    targets = []
    for number, t in enumerate(spec.targets):
        if stop():
            raise SearchCancelled("search cancelled while preparing predictors")
        if t.predictor is not None:
            predictor = load_predictor(t.predictor)
            if predictor.space.params != deploy.params or predictor.space.name != deploy.name:
                raise ValueError(
                    f"targets[{number}].predictor: fitted for {predictor.space!r}, the search "
                    f"deploys {deploy!r} (device resolution, data classes and width must match)")
        else:
            def step(fraction: float, message: str, _n: int = number,
                     _name: str = t.device.name) -> None:
                report(0.05 * (_n + fraction) / len(spec.targets), f"{_name}: {message}")

            predictor = local_predictor(deploy, t.device, spec.cache_root, progress=step)
        targets.append(Target(t.device.name, predictor, t.budget_ms, spec.margin_sigmas))
    return LatencyBudget(targets)


def _estimator(spec: SearchSpec, space: Any, data: Any) -> Any:
    from .estimators import estimator_settings, get_estimator

    allowed = estimator_settings(spec.estimator)
    options: dict[str, object] = {"space": space}
    if "data" in allowed:
        options["data"] = data
    if "seed" in allowed:
        options["seed"] = spec.seed
    if "checkpoint" in allowed:
        if spec.checkpoint is None:
            raise ValueError(f"estimator {spec.estimator!r} needs a supernet checkpoint "
                             "(--checkpoint; train one with `hwnas supernet train`)")
        options["checkpoint"] = spec.checkpoint
    return get_estimator(spec.estimator, **options)


def load_spec(path: str | Path) -> SearchSpec:
    """Read a spec JSON file (as the service stores it)."""
    from profilers.schema import validate_versioned

    data = json.loads(Path(path).read_text())
    return validate_versioned(data, SearchSpec, expected=SPEC_VERSION, what=f"search spec {path}")
