"""`hwnas search`: the product's main command, from a device and a budget to model files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from profilers.device import DeviceProfile, load_device

from .options import ParamOpt, command_line, parse_params


def search(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (resumes if it "
                                      "holds an interrupted search of the same spec).")],
    budget_ms: Annotated[list[float] | None, typer.Option(
        "--budget-ms", help="Latency budget in ms; one per device, in order.")] = None,
    device: Annotated[list[Path] | None, typer.Option(
        help="Device profile JSON (repeat for a multi-device search).")] = None,
    backend: Annotated[str | None, typer.Option(
        help="No device file: this machine's CPU on this runtime (onnxruntime, openvino, "
             "tflite).")] = None,
    threads: Annotated[int, typer.Option(min=1, help="Threads of --backend.")] = 1,
    resolution: Annotated[int, typer.Option(help="Deployed input size of --backend.")] = 224,
    predictor: Annotated[list[str] | None, typer.Option(
        help="Fitted predictor JSON per device, in order ('-' profiles this machine).")] = None,
    space: Annotated[str, typer.Option(help="Search space.")] = "mbv2",
    param: ParamOpt = None,
    estimator: Annotated[str, typer.Option(help="zico, params, flops, random, bn, "
                                           "supernet.")] = "zico",
    checkpoint: Annotated[str | None, typer.Option(help="Supernet checkpoint (bn, "
                                                   "supernet).")] = None,
    strategy: Annotated[str, typer.Option(help="random, evolution, annealing, parsec, "
                                          "fpnas.")] = "evolution",
    evaluations: Annotated[int, typer.Option(help="Estimator calls in all.")] = 200,
    stages: Annotated[int, typer.Option(help="2: HURRICANE two-stage; 1: whole space.")] = 2,
    keep: Annotated[int, typer.Option(help="Ops kept per slot by the hardware tailoring; "
                                      "0 keeps all.")] = 8,
    data: Annotated[str | None, typer.Option(help="ImageFolder dir or .npz (default: "
                                             "bundled digits).")] = None,
    export: Annotated[str, typer.Option(help="Exported files, comma separated: onnx, tflite, "
                                        "tflite-int8, openvino.")] = "onnx,tflite,tflite-int8",
    seed: Annotated[int, typer.Option(help="Seed of the search.")] = 0,
    margin_sigmas: Annotated[float, typer.Option(
        help="Budgets must hold at the prediction plus this many predicted standard "
             "deviations (0: at the prediction).")] = 1.0,
    cache: Annotated[Path | None, typer.Option(help="Cache of local profiling runs "
                                               "(default ~/.cache/hwnas).")] = None,
    train_minutes: Annotated[float | None, typer.Option(
        help="Train the winner this many minutes on DATA and ship trained files.")] = None,
    train_epochs: Annotated[int | None, typer.Option(
        help="Instead of --train-minutes: train this many epochs (reproducible).")] = None,
    train_top: Annotated[int, typer.Option(
        help="With a training budget: also train the best feasible runners-up of the Pareto "
             "front and ship the most accurate.")] = 1,
    spec_file: Annotated[Path | None, typer.Option(
        "--spec", help="Run the search a spec.json describes (as a search or the service "
                       "writes it); the other search options are then not allowed.")] = None,
) -> None:
    """Search the most accurate arch under the budget(s) and export it to OUT."""
    from search.api import load_spec, run_search
    from search.driver import SearchCancelled

    if spec_file is not None:
        if budget_ms or device or backend:
            raise ValueError("--spec: give the spec file alone (with -o), not with "
                             "--budget-ms, --device or --backend")
        spec = load_spec(spec_file)
    else:
        spec = _spec(budget_ms=budget_ms or [], device=device, backend=backend,
                     threads=threads, resolution=resolution, predictor=predictor, space=space,
                     param=param, estimator=estimator, checkpoint=checkpoint,
                     strategy=strategy, evaluations=evaluations, stages=stages, keep=keep,
                     data=data, export=export, seed=seed, margin_sigmas=margin_sigmas,
                     cache=cache,
                     train_minutes=train_minutes, train_epochs=train_epochs,
                     train_top=train_top)
    _check_names(spec)
    with typer.progressbar(length=1000, label="search", show_pos=False) as bar:
        state = {"done": 0}

        def progress(fraction: float, message: str) -> None:
            step = int(1000 * min(max(fraction, 0.0), 1.0)) - state["done"]
            bar.label = f"search: {message[:60]:60s}"
            if step > 0:
                bar.update(step)
                state["done"] += step

        try:
            result = run_search(spec, out, progress=progress,
                                command=command_line(ctx))
        except (KeyboardInterrupt, SearchCancelled):
            typer.echo(f"\ninterrupted; the state is in {out}: run the same command to "
                       "resume", err=True)
            raise typer.Exit(130) from None
    for t in result.targets:
        ms = t.measured.get("median_ms")
        typer.echo(f"{t.device}: predicted {t.predicted_ms:.2f} ms, "
                   + (f"measured {ms:.2f} ms ({t.error_vs_predicted:+.1%})" if ms else
                      f"not measured here ({t.measured.get('reason')})")
                   + f", budget {t.budget_ms:g} ms")
    typer.echo(f"best {result.arch}\nscore {result.score:.4g}  params {result.num_params:,}  "
               f"FLOPs {result.flops:,}\n-> {out}/report.json, {out}/report.md, "
               + ", ".join(f["path"] for f in result.files.values()))
    if result.training is not None:
        acc = result.training["val_accuracy"]
        typer.echo("val accuracy " + ", ".join(f"{k} {v:.2%}" for k, v in acc.items())
                   + f"\n-> {out}/model_card.md")


def _spec(*, budget_ms: list[float], device: list[Path] | None, backend: str | None,
          threads: int, resolution: int, predictor: list[str] | None, space: str,
          param: list[str] | None, estimator: str, checkpoint: str | None, strategy: str,
          evaluations: int, stages: int, keep: int, data: str | None, export: str, seed: int,
          margin_sigmas: float, cache: Path | None, train_minutes: float | None,
          train_epochs: int | None, train_top: int) -> object:
    """The `SearchSpec` the command-line options describe."""
    devices = _devices(device, backend, threads, resolution)
    if len(budget_ms) != len(devices):
        raise ValueError(f"--budget-ms: give one budget per device ({len(devices)}), "
                         f"got {len(budget_ms)}")
    predictors = list(predictor or [])
    if predictors and len(predictors) != len(devices):
        raise ValueError(f"--predictor: give one per device ({len(devices)}) or none, "
                         f"got {len(predictors)}")
    from pydantic import ValidationError

    from search.api import SearchSpec, TargetSpec

    try:
        spec = SearchSpec(
            space=space, space_params=parse_params(space, param), estimator=estimator,
            checkpoint=checkpoint, strategy=strategy, evaluations=evaluations, stages=stages,
            tailor_keep=keep or None, data=data, seed=seed, margin_sigmas=margin_sigmas,
            formats=[f.strip() for f in export.split(",") if f.strip()],
            cache_dir=str(cache) if cache else None, train_minutes=train_minutes,
            train_epochs=train_epochs, train_top=train_top,
            targets=[TargetSpec(device=d, budget_ms=b,
                                predictor=None if not predictors or predictors[i] == "-"
                                else predictors[i])
                     for i, (d, b) in enumerate(zip(devices, budget_ms, strict=True))])
    except ValidationError as err:
        from profilers.schema import describe_validation_error

        raise ValueError(describe_validation_error(err)) from None
    return spec


def _devices(paths: list[Path] | None, backend: str | None, threads: int,
             resolution: int) -> list[DeviceProfile]:
    if paths and backend:
        raise ValueError("--device and --backend: give one or the other")
    if paths:
        return [load_device(p) for p in paths]
    name = backend or "onnxruntime"
    if name not in ("onnxruntime", "openvino", "tflite", "torch"):
        raise ValueError(f"--backend: unknown backend {name!r} "
                         "(known: onnxruntime, openvino, tflite, torch)")
    return [DeviceProfile(name=f"local-{name}", backend=name, threads=threads,
                          resolution=resolution, hardware="this machine")]


def _check_names(spec: object) -> None:
    """Unknown strategy or estimator names fail before any profiling starts."""
    from search.estimators import list_estimators
    from search.strategies import list_strategies

    if spec.strategy not in list_strategies():
        raise ValueError(f"--strategy: unknown strategy {spec.strategy!r} "
                         f"(known: {', '.join(list_strategies())})")
    if spec.estimator not in list_estimators():
        raise ValueError(f"--estimator: unknown estimator {spec.estimator!r} "
                         f"(known: {', '.join(list_estimators())})")
