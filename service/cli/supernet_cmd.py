"""`hwnas supernet train`: a weight-sharing supernet (SPOS, BN-NAS or Pi-NAS mode)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import ParamOpt, load_space

app = typer.Typer(help="Weight-sharing supernets.", no_args_is_help=True)


@app.command()
def train(
    space_name: Annotated[str, typer.Option("--space", help="Space name, e.g. mbv2.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint file (resumed if it "
                                      "exists).")],
    mode: Annotated[str, typer.Option(help="spos, bn (BN-NAS) or pi (Pi-NAS, no labels).")
                    ] = "spos",
    param: ParamOpt = None,
    data: Annotated[Path | None, typer.Option(help="ImageFolder directory or .npz (x, y); "
                                              "default: bundled digits.")] = None,
    minutes: Annotated[float | None, typer.Option(help="Training-time budget (over "
                                                  "resumed runs too).")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Step budget.")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    seed: Annotated[int, typer.Option(help="Seed of paths, batches and init.")] = 0,
    fresh: Annotated[bool, typer.Option(help="Overwrite OUT instead of resuming.")] = False,
    threads: Annotated[int | None, typer.Option(min=1, help="torch threads.")] = None,
) -> None:
    """Train SPACE's supernet on DATA until the budget (minutes and/or steps) is spent."""
    from search.data import load_dataset
    from search.training import MODES, TrainProgress, TrainSettings, torch_threads, train_supernet

    if mode not in MODES:
        raise ValueError(f"--mode: unknown mode {mode!r} (known: {', '.join(MODES)})")
    if minutes is None and steps is None:
        raise ValueError("--minutes/--steps: give a budget")
    space = load_space(space_name, param)
    dataset = load_dataset(data, resolution=int(space.params.get("resolution", 32)), seed=seed)
    settings = TrainSettings(mode=mode, batch_size=batch_size, seed=seed)
    with typer.progressbar(length=1000, label=f"supernet {mode}") as bar, \
            torch_threads(threads):
        done = 0

        def progress(p: TrainProgress) -> None:
            nonlocal done
            now = int(1000 * p.fraction)
            bar.update(now - done)
            done = now

        meta = train_supernet(space, dataset, out=out, settings=settings, minutes=minutes,
                              steps=steps, resume=not fresh, progress=progress)
    typer.echo(f"{out}: {meta.step} steps, {meta.seconds:.0f} s, loss {meta.loss:.4f}")
