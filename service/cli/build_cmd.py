"""`hwnas build`: an arch -> torch net -> exported files, each run and checked against torch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from .options import ParamOpt, load_space


def _formats(text: str) -> list[str]:
    from models.export import FORMATS

    names = [f.strip() for f in text.split(",") if f.strip()]
    if not names:
        raise ValueError("--export: name at least one format")
    for name in names:
        if name not in FORMATS:
            raise ValueError(f"--export: unknown format {name!r} (known: {', '.join(FORMATS)})")
    return list(dict.fromkeys(names))


def load_calibration(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Calibration inputs from a `.npy` array or an `.npz` with array `x`, shape (N, *shape)."""
    if not path.exists():
        raise FileNotFoundError(f"--calibration: no such file {path}")
    if path.suffix == ".npz":
        with np.load(path) as data:
            if "x" not in data:
                raise ValueError(f"--calibration {path}: the .npz has no array 'x'")
            x = data["x"]
    elif path.suffix == ".npy":
        x = np.load(path)
    else:
        raise ValueError(f"--calibration {path}: expected a .npy or .npz file")
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape or len(x) == 0:
        raise ValueError(
            f"--calibration {path}: expected shape (N, {', '.join(map(str, shape))}), "
            f"got {tuple(x.shape)}"
        )
    return x.astype(np.float32)


def build(
    space_name: Annotated[str, typer.Argument(metavar="SPACE", help="Space name, e.g. mbv2.")],
    arch_text: Annotated[str, typer.Argument(metavar="ARCH", help="Arch string of that space.")],
    export: Annotated[str, typer.Option(help="Comma-separated formats: onnx, tflite, "
                                        "tflite-int8, openvino.")] = "onnx",
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("build"),
    param: ParamOpt = None,
    check: Annotated[bool, typer.Option(help="Run every file on its runtime and compare "
                                        "with torch.")] = True,
    calibration: Annotated[Path | None, typer.Option(
        help="Inputs for BN recalibration and int8 calibration (.npy, or .npz with x); "
             "default: 32 random normal inputs.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the weight init and inputs.")] = 0,
    threads: Annotated[int, typer.Option(min=1, help="Runtime threads for the check.")] = 1,
) -> None:
    """Build ARCH of SPACE, export it, and check each file against torch."""
    space = load_space(space_name, param)
    arch = space.decode(arch_text)
    formats = _formats(export)

    import torch

    from models import build as build_net
    from models import count_flops, count_params, recalibrate_bn
    from models.export import calibration_batches, check_exported, exported_bytes
    from models.export import export as export_files

    torch.manual_seed(seed)
    net = build_net(space, arch).eval()
    shape = net.input_shape
    rng = np.random.default_rng(seed)
    calib = (load_calibration(calibration, shape) if calibration is not None
             else rng.standard_normal((32, *shape)).astype(np.float32))
    # An untrained net's default BN statistics let its signal vanish (the logits become
    # the classifier bias), which would make the check below meaningless.
    batches = calibration_batches(calib)
    recalibrate_bn(net, batches)
    out.mkdir(parents=True, exist_ok=True)
    example = net.example_input()
    with typer.progressbar(length=len(formats), label="exporting", file=None) as bar:
        files = {}
        for fmt in formats:
            files.update(export_files(net, example, out, [fmt], calibration=batches))
            bar.update(1)
    report: dict[str, object] = {
        "space": space.name, "params": space.params, "arch": space.encode(arch),
        "num_params": count_params(net), "flops": count_flops(net, example), "files": {},
    }
    entries = (check_exported(net, files, calib[-1:], threads=threads) if check else
               {fmt: {"path": path.name, "bytes": exported_bytes(fmt, path)}
                for fmt, path in files.items()})
    failed = [fmt for fmt, entry in entries.items() if check and not entry["ok"]]
    report["files"] = entries
    for fmt, entry in entries.items():
        typer.echo(f"{fmt:12s} {files[fmt]}  {entry['bytes'] / 1e6:7.2f} MB"
                   + (f"  rel err {entry['rel_err']:.2e} (tol {entry['tolerance']:.0e})"
                      f"  {'ok' if entry['ok'] else 'MISMATCH'}" if check else ""))
    (out / "build.json").write_text(json.dumps(report, indent=2) + "\n")
    typer.echo(f"params {report['num_params']:,}  FLOPs {report['flops']:,}  -> {out}/build.json")
    if failed:
        typer.echo(f"error: outputs differ from torch beyond tolerance: {', '.join(failed)}",
                   err=True)
        raise typer.Exit(1)
