"""`hwnas predictor fit|eval` and `hwnas predict`: latency predictors from the command line.

Inputs are a ``measurements.json`` (its cells make the LUT; its whole archs, whose strings
are in the kit beside it, are end-to-end samples) and/or an ``e2e.json`` / CSV of
``arch,latency_ms``. Every bad input (a missing file, measurements of another space or
backend, a NaN or negative latency, an arch the space cannot hold, a LUT miss) is one
``error: ...`` line and exit code 2, through the root app's handler.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from .options import ParamOpt, load_space

app = typer.Typer(help="Fit and evaluate latency predictors.", no_args_is_help=True)


def _samples_from_kit(measurements: Path, kit: Path | None, statistic: str):
    """The whole archs of ``measurements``, named by the kit (default: kit.zip beside it)."""
    from latency import samples_from_measurements
    from profilers.formats import load_measurements, read_manifest

    doc = load_measurements(measurements)
    kit = kit if kit is not None else measurements.parent / "kit.zip"
    if not doc.archs or not kit.is_file():
        return None
    return samples_from_measurements(doc, read_manifest(kit), statistic=statistic)


def _inputs(measurements: Path | None, kit: Path | None, e2e: Path | None,
            space_name: str | None, param: list[str] | None, statistic: str):
    from latency import LookupTable, SpaceRef, load_samples

    lut, samples, space_ref = None, None, None
    if measurements is not None:
        lut = LookupTable.from_measurements(measurements, statistic=statistic)
        space_ref = lut.space
        samples = _samples_from_kit(measurements, kit, statistic)
    if space_name is not None:
        named = SpaceRef.of(load_space(space_name, param))
        if space_ref is not None:
            space_ref.check_same(named, "--space")
        space_ref = named
    if e2e is not None:
        samples = load_samples(e2e, space=space_ref)
    return lut, samples


def _missing(path: Path | None, option: str) -> None:
    if path is not None and not path.exists():
        raise FileNotFoundError(f"{option}: no such file: {path}")


@app.command("fit")
def fit(
    out: Annotated[Path, typer.Option("--out", "-o", help="Predictor JSON to write.")],
    kind: Annotated[str, typer.Option(help="lut, fox, residual or flops.")] = "fox",
    measurements: Annotated[Path | None, typer.Option(
        "--measurements", "-m", help="measurements.json: its cells are the LUT.")] = None,
    e2e: Annotated[Path | None, typer.Option(
        help="End-to-end samples: e2e.json or a CSV of arch,latency_ms (default: the "
             "measured whole archs of --measurements, if its kit is at hand).")] = None,
    kit: Annotated[Path | None, typer.Option(
        help="Kit of --measurements, for its arch strings (default: kit.zip beside it).")] = None,
    space_name: Annotated[str | None, typer.Option(
        "--space", help="Space of a CSV when there is no --measurements.")] = None,
    param: ParamOpt = None,
    e2e_limit: Annotated[int | None, typer.Option(
        min=1, help="Use only this many end-to-end samples (seeded draw): transfer mode.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of --e2e-limit's draw and of the trees.")] = 0,
    statistic: Annotated[str, typer.Option(
        help="Latency of a measurement: median_ms, or p10_ms (robust on a loaded machine).")
    ] = "median_ms",
) -> None:
    """Fit a latency predictor of KIND and write it as JSON; prints what it learnt."""
    from latency import LookupMissError, get_predictor

    for path, option in ((measurements, "--measurements"), (e2e, "--e2e"), (kit, "--kit")):
        _missing(path, option)
    lut, samples = _inputs(measurements, kit, e2e, space_name, param, statistic)
    if samples is not None and e2e_limit is not None and e2e_limit < len(samples):
        pick = np.random.default_rng(seed).choice(len(samples), e2e_limit, replace=False)
        samples = samples.subset(np.sort(pick))
    options = {"seed": seed} if kind == "residual" else {}
    try:
        predictor = get_predictor(kind, **options).fit(lut=lut, samples=samples)
    except LookupMissError as exc:
        raise ValueError(str(exc)) from None
    predictor.save(out)
    typer.echo(predictor.describe())
    typer.echo(f"-> {out}")


@app.command("eval")
def evaluate_cmd(
    predictor_path: Annotated[Path, typer.Argument(metavar="PREDICTOR",
                                                   help="Predictor JSON.")],
    e2e: Annotated[Path, typer.Option(help="Held-out e2e.json or CSV of arch,latency_ms.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Judge a predictor on held-out measured archs: +-5%/+-10%, RMSE, MAPE, Kendall tau."""
    from latency import evaluate, load_predictor, load_samples

    _missing(e2e, "--e2e")
    predictor = load_predictor(predictor_path)
    report = evaluate(predictor, load_samples(e2e, space=predictor.space_ref))
    typer.echo(report.model_dump_json(indent=2) if as_json else report.line())


def predict(
    predictor_path: Annotated[Path, typer.Argument(metavar="PREDICTOR",
                                                   help="Predictor JSON.")],
    archs: Annotated[list[str], typer.Argument(metavar="ARCH...", help="Arch strings.")],
) -> None:
    """Predicted latency (ms) and its uncertainty for each ARCH, one line each."""
    from latency import load_predictor

    predictor = load_predictor(predictor_path)
    decoded = [predictor.space.decode(text) for text in archs]
    for text, ms, std in zip(archs, predictor.predict(decoded),
                             predictor.predict_std(decoded), strict=True):
        typer.echo(f"{ms:.3f} ms +- {std:.3f}  {text}")
