"""`hwnas spaces list|show|sample`."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import typer

from spaces import get_space, list_spaces, space_params

from .options import ParamOpt, load_space

app = typer.Typer(help="Inspect and sample search spaces.", no_args_is_help=True)


@app.command("list")
def list_() -> None:
    """List the registered spaces with their parameters and size."""
    for name in list_spaces():
        space = get_space(name)
        params = " ".join(f"{k}={v}" for k, v in space_params(name).items())
        doc = (type(space).__doc__ or "").strip().splitlines()[0]
        typer.echo(f"{name:8s} 10^{space.size():.1f} archs, {len(space.slots)} slots  "
                   f"[{params}]  {doc}")


@app.command()
def show(name: str, param: ParamOpt = None) -> None:
    """Show a space: parameters, slots with shapes and choices, cells, size."""
    space = load_space(name, param)
    typer.echo(f"space {name}  " + " ".join(f"{k}={v}" for k, v in space.params.items()))
    typer.echo(f"size 10^{space.size():.2f} archs; {len(space.slots)} slots; "
               f"{len(space.cells())} distinct cells (LUT keys)")
    typer.echo(f"default {space.encode(space.default())}")
    for slot in space.slots:
        typer.echo(f"  {slot.name:6s} in {slot.in_shape.key():>10s} out {slot.out_shape.key():>10s}"
                   f" s{slot.stride} {len(slot.choices):2d} choices: {' '.join(slot.choices)}")


@app.command()
def sample(
    name: str,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    n: Annotated[int, typer.Option("-n", min=1, help="How many archs.")] = 1,
    param: ParamOpt = None,
) -> None:
    """Print random arch strings of a space, one a line."""
    space = load_space(name, param)
    rng = np.random.default_rng(seed)
    for _ in range(n):
        typer.echo(space.encode(space.sample(rng)))
