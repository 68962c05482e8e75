"""The profiling kit: one small model file per distinct cell of a space, for a board to time.

HURRICANE and FBNet measure each candidate operator on the target device once and sum
the table over an architecture; once-for-all keys those tables by op and shapes. A kit
is that measurement job packed for a board: every cell of `space.cells()` (stem, head,
fixed blocks and every searchable op at every shape) as a model file with its fixed
input shape, plus a few whole random architectures (seeded) so a predictor can be checked
end to end on the same device. The format (a zip with `manifest.json`) belongs to
`profilers`, which reads it on the board.

ONNX cells go through torch's TorchScript exporter rather than the dynamo exporter that
`models.export` uses for deliverables: both give the same graph for these single blocks
(a test checks the outputs), and TorchScript takes ~0.1 s a cell against ~2 s, which is
the difference between one and thirteen minutes for the 398 cells of `mbv2` at 224 px.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn

from profilers.kit import KitEntry, KitManifest, write_kit
from spaces import Arch, Cell, Space

from .builder import build, build_cell
from .export import export_openvino, export_tflite, export_tflite_int8

SUFFIXES = {"onnx": ".onnx", "tflite": ".tflite", "openvino": ".xml", "pt2": ".pt2"}
Progress = Callable[[int, int, str], None]


def export_kit_file(module: nn.Module, example: torch.Tensor, path: Path, fmt: str,
                    precision: str) -> None:
    """Write one kit model in `fmt` (int8 only for TFLite, calibrated on random inputs)."""
    module.eval()
    if fmt == "onnx":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(module, (example,), str(path), dynamo=False,
                              input_names=["input"], output_names=["output"])
    elif fmt == "tflite" and precision == "int8":
        calibration = [torch.randn_like(example) for _ in range(4)]
        export_tflite_int8(module, example, path, calibration=calibration)
    elif fmt == "tflite":
        export_tflite(module, example, path)
    elif fmt == "openvino":
        export_openvino(module, example, path)
    else:
        torch.export.save(torch.export.export(module, (example,)), str(path))


def _kit_models(space: Space, cells: list[Cell], archs: list[Arch]
                ) -> Iterator[tuple[str, str, nn.Module, tuple[int, ...], str | None]]:
    """(key, kind, module, input shape, arch string) per kit file, each built when reached,
    so a kit of 400 cells never holds 400 modules (and whole nets) at once."""
    for cell in cells:
        yield cell.key, cell.kind, build_cell(space, cell), cell.in_shape.nchw(), None
    for i, arch in enumerate(archs):
        net = build(space, arch).eval()
        yield f"arch-{i}", "arch", net, (1, *net.input_shape), space.encode(arch)


def make_kit(space: Space, fmt: str, out: str | Path, *, archs: int = 5, seed: int = 0,
             precision: str = "fp32", progress: Progress | None = None) -> KitManifest:
    """Write the profiling kit of `space` in format `fmt` to the zip `out`.

    Args:
        space: The space whose cells (and random archs) go into the kit.
        fmt: "onnx", "tflite", "openvino" or "pt2" (a `torch.export` program).
        out: Path of the zip to write (written atomically).
        archs: How many whole random architectures to add for end-to-end validation.
        seed: Seed of those architectures and of the weights.
        precision: "fp32", or "int8" for a TFLite kit of int8 files.
        progress: Called as `progress(done, total, key)` after each file.

    Returns:
        The manifest written into the kit.
    """
    if fmt not in SUFFIXES:
        raise ValueError(f"--format: unknown kit format {fmt!r} (known: {', '.join(SUFFIXES)})")
    if precision not in ("fp32", "int8"):
        raise ValueError(f"--precision: expected fp32 or int8, got {precision!r}")
    if precision == "int8" and fmt != "tflite":
        raise ValueError(f"--precision int8: only TFLite kits are quantised, not {fmt!r}")
    if archs < 0:
        raise ValueError(f"--archs must be >= 0, got {archs}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    sampled = list(dict.fromkeys(space.sample(rng) for _ in range(archs)))
    cells = space.cells()
    total = len(cells) + len(sampled)
    suffix = SUFFIXES[fmt]
    entries: list[KitEntry] = []
    files: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="hwnas-kit-") as tmp:
        for done, (key, kind, module, shape, arch_text) in enumerate(
                _kit_models(space, cells, sampled), start=1):
            name = f"{'archs' if kind == 'arch' else 'cells'}/{key}{suffix}"
            local = Path(tmp) / name
            local.parent.mkdir(parents=True, exist_ok=True)
            with torch.no_grad():
                export_kit_file(module, torch.randn(shape), local, fmt, precision)
            files[name] = local
            if fmt == "openvino":
                files[name.removesuffix(".xml") + ".bin"] = local.with_suffix(".bin")
            entries.append(KitEntry(key=key, kind=kind, file=name, input_shape=list(shape),
                                    arch=arch_text))
            if progress is not None:
                progress(done, total, key)
        manifest = KitManifest(space=space.name, params=space.params, format=fmt,
                               precision=precision, created_at=datetime.now(UTC),
                               entries=entries)
        write_kit(out, manifest, files)
    return manifest
