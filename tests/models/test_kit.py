"""Profiling kits: one runnable file per distinct cell, plus whole archs, readable by profilers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models import build_cell
from models.export import run_exported
from models.kit import export_kit_file, make_kit
from profilers.kit import read_kit
from tests.conftest import small_space


def test_onnx_kit_has_every_cell_and_runs(tmp_path: Path) -> None:
    space = small_space("nb201")
    seen: list[int] = []
    manifest = make_kit(space, "onnx", tmp_path / "kit.zip", archs=2, seed=3,
                        progress=lambda done, total, key: seen.append(done))
    cells = space.cells()
    assert seen == list(range(1, len(cells) + 3))
    manifest2, folder = read_kit(tmp_path / "kit.zip", tmp_path / "x")
    assert manifest2 == manifest
    assert manifest.space == "nb201" and manifest.params == space.params
    by_key = {e.key: e for e in manifest.entries}
    assert set(by_key) == {c.key for c in cells} | {"arch-0", "arch-1"}
    for entry in manifest.entries:
        x = np.random.default_rng(0).standard_normal(entry.input_shape).astype(np.float32)
        y = run_exported(folder / entry.file, x)
        assert np.isfinite(y).all()
        if entry.kind == "arch":
            assert entry.input_shape == [1, 3, 16, 16]
            assert space.contains(space.decode(entry.arch))


@pytest.mark.parametrize("op", ["nor_conv_3x3", "avg_pool_3x3", "resblock"])
def test_kit_onnx_file_computes_the_block(tmp_path: Path, op: str) -> None:
    space = small_space("nb201")
    cell = next(c for c in space.cells() if c.op == op)
    module = build_cell(space, cell)
    x = torch.randn(cell.in_shape.nchw())
    export_kit_file(module, x, tmp_path / "cell.onnx", "onnx", "fp32")
    with torch.no_grad():
        expected = module(x).numpy()
    np.testing.assert_allclose(run_exported(tmp_path / "cell.onnx", x.numpy()), expected,
                               rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_tflite_int8_kit_holds_int8_cells(tmp_path: Path) -> None:
    # One op per slot keeps this to 7 files (int8 conversion takes ~6 s a file).
    full = small_space("nb201")
    space = full.restrict({i: ["nor_conv_3x3"] for i in range(len(full.slots))})
    manifest = make_kit(space, "tflite", tmp_path / "kit.zip", archs=0, precision="int8")
    assert len(manifest.entries) == 7
    _, folder = read_kit(tmp_path / "kit.zip", tmp_path / "x")
    assert manifest.precision == "int8" and manifest.format == "tflite"
    entry = next(e for e in manifest.entries if "nor_conv_3x3" in e.key)
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(folder / entry.file))
    assert any(d["dtype"] == np.int8 for d in interp.get_tensor_details())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fmt": "caffe"}, "unknown kit format 'caffe'"),
        ({"fmt": "onnx", "precision": "int8"}, "only TFLite kits are quantised"),
        ({"fmt": "tflite", "precision": "fp8"}, "expected fp32 or int8"),
        ({"fmt": "onnx", "archs": -1}, "--archs must be >= 0"),
    ],
)
def test_bad_kit_requests(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_kit(small_space("nb201"), out=tmp_path / "k.zip", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "k.zip").exists()
