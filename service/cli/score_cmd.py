"""`hwnas score`: accuracy-estimator scores of architectures, one a line."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from .options import ParamOpt, load_space


def score(
    archs: Annotated[list[str], typer.Argument(help="Arch strings of the space.")],
    space_name: Annotated[str, typer.Option("--space", help="Space name, e.g. mbv2.")],
    estimator: Annotated[str, typer.Option(help="zico, params, flops, random, bn or "
                                           "supernet.")] = "zico",
    param: ParamOpt = None,
    data: Annotated[Path | None, typer.Option(help="ImageFolder directory or .npz (x, y); "
                                              "default: bundled digits.")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="Supernet checkpoint (bn, "
                                                    "supernet).")] = None,
    seed: Annotated[int, typer.Option(help="Seed (batches, init, random scores).")] = 0,
    threads: Annotated[int | None, typer.Option(min=1, help="torch threads.")] = None,
) -> None:
    """Score ARCHS with one estimator (higher is better): prints `score arch` lines and the
    seconds taken."""
    from search.data import load_dataset
    from search.estimators import estimator_settings, get_estimator

    space = load_space(space_name, param)
    parsed = [space.decode(a) for a in archs]
    allowed = estimator_settings(estimator)
    settings: dict[str, object] = {"space": space}
    if checkpoint is not None:
        if "checkpoint" not in allowed:
            raise ValueError(f"--checkpoint: the {estimator} estimator takes no checkpoint")
        settings["checkpoint"] = checkpoint
    elif "checkpoint" in allowed:
        raise ValueError(f"--checkpoint: the {estimator} estimator needs a supernet "
                         "checkpoint (hwnas supernet train)")
    if "data" in allowed:
        resolution = int(space.params.get("resolution", 32))
        settings["data"] = load_dataset(data, resolution=resolution, seed=seed)
    elif data is not None:
        raise ValueError(f"--data: the {estimator} estimator uses no data")
    for key, value in (("seed", seed), ("threads", threads)):
        if key in allowed and value is not None:
            settings[key] = value
    t0 = time.perf_counter()
    est = get_estimator(estimator, **settings)
    scores = est.score(parsed)
    seconds = time.perf_counter() - t0
    for text, value in zip(archs, scores, strict=True):
        typer.echo(f"{value:.6g} {text}")
    typer.echo(f"# {estimator}: {len(parsed)} archs in {seconds:.2f} s "
               f"({seconds / max(1, len(parsed)):.3f} s/arch)", err=True)
