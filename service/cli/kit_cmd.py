"""`hwnas kit`: write a space's profiling kit for a board."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import ParamOpt, load_space


def kit(
    space_name: Annotated[str, typer.Argument(metavar="SPACE", help="Space name, e.g. mbv2.")],
    fmt: Annotated[str, typer.Option("--format", help="onnx, tflite, openvino or pt2.")] = "onnx",
    out: Annotated[Path, typer.Option("--out", "-o", help="Kit zip to write.")] = Path("kit.zip"),
    param: ParamOpt = None,
    archs: Annotated[int, typer.Option(help="Whole random archs for end-to-end checks.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the archs and weights.")] = 0,
    precision: Annotated[str, typer.Option(help="fp32, or int8 (TFLite only).")] = "fp32",
) -> None:
    """Write one model file per distinct cell of SPACE (plus whole archs) into a kit zip."""
    space = load_space(space_name, param)
    from models.kit import make_kit

    total = len(space.cells()) + archs
    with typer.progressbar(length=total, label=f"kit {space.name} {fmt}", file=None) as bar:
        manifest = make_kit(space, fmt, out, archs=archs, seed=seed, precision=precision,
                            progress=lambda done, _total, _key: bar.update(1))
    typer.echo(f"{len(manifest.entries)} models -> {out}")
