"""`hwnas profile`: kit + board runner in one step, on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from profilers.device import KIT_FORMAT

from .options import ParamOpt, load_space


def profile(
    backend: Annotated[str, typer.Option(help="onnxruntime, openvino, tflite or torch.")],
    space_name: Annotated[str, typer.Option("--space", help="Space name, e.g. mbv2.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for kit.zip and "
                                      "measurements.json.")],
    param: ParamOpt = None,
    threads: Annotated[int, typer.Option(min=1, help="Runtime threads.")] = 1,
    precision: Annotated[str, typer.Option(help="fp32, or int8 (TFLite kits).")] = "fp32",
    device: Annotated[str | None, typer.Option(help="e.g. GPU (openvino), cuda:0.")] = None,
    archs: Annotated[int, typer.Option(help="Whole random archs measured end to end.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the archs.")] = 0,
) -> None:
    """Write SPACE's kit for BACKEND and measure it here: OUT/measurements.json.

    An existing OUT/kit.zip of the same space, parameters and format is reused, so an
    interrupted run resumes where it stopped.
    """
    if backend not in KIT_FORMAT:
        raise ValueError(f"--backend: unknown backend {backend!r} "
                         f"(known: {', '.join(KIT_FORMAT)})")
    space = load_space(space_name, param)
    fmt = KIT_FORMAT[backend]
    from profilers import runner
    from profilers.kit import read_manifest

    out.mkdir(parents=True, exist_ok=True)
    kit_path = out / "kit.zip"
    reuse = False
    if kit_path.exists():
        old = read_manifest(kit_path)
        reuse = (old.space, old.params, old.format, old.precision) == (
            space.name, space.params, fmt, precision)
    if reuse:
        typer.echo(f"reusing {kit_path}")
    else:
        from models.kit import make_kit

        total = len(space.cells()) + archs
        with typer.progressbar(length=total, label=f"kit {space.name} {fmt}") as bar:
            make_kit(space, fmt, kit_path, archs=archs, seed=seed, precision=precision,
                     progress=lambda *_: bar.update(1))
    argv = ["run", str(kit_path), "--backend", backend, "--threads", str(threads),
            "-o", str(out / "measurements.json")]
    if device is not None:
        argv += ["--device", device]
    code = runner.main(argv)
    if code:
        raise typer.Exit(code)
