"""Tiny model files in every kit format, kit manifests over them, and backend params.

Models are built here without any other hwnas package: ONNX graphs with ``onnx.helper``
(OpenVINO IR is saved from them), ``torch.export`` programs for the torch backend, and
TFLite files converted by ``litert_torch`` (seconds each, so tests that need them are
marked slow). Every model is a conv + ReLU stack with one NCHW input. The fixtures that
cache them per session are in ``conftest.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from profilers.base import BackendInfo, list_backends
from profilers.formats import KitEntry, KitManifest

# name -> (input channels, output channels, height = width, convs): small and big cells
# and a whole "arch" of two convs.
SPECS: dict[str, tuple[int, int, int, int]] = {
    "small": (8, 8, 16, 1),
    "big": (32, 64, 56, 1),
    "arch": (8, 8, 16, 2),
}
# Formats whose files take seconds to make: tests that need real ones are marked slow.
SLOW_FORMATS = {"tflite"}
SUFFIX = {"onnx": ".onnx", "openvino": ".xml", "tflite": ".tflite", "pt2": ".pt2"}
KIT_ENTRIES = (
    ("cell-small", "cell", "small"),
    ("cell-big", "cell", "big"),
    ("arch-0", "arch", "arch"),
)


def backend_params(*, real_models: bool) -> list[object]:
    """One pytest param per registered backend; unavailable ones skip with their reason.

    Args:
        real_models: The test needs real model files, which are slow to make for some
            formats (the param is then marked slow).
    """
    params = []
    for info in list_backends():
        marks = []
        if not info.available:
            marks.append(pytest.mark.skip(reason=f"{info.name}: {info.reason}"))
        if real_models and info.formats[0] in SLOW_FORMATS:
            marks.append(pytest.mark.slow)
        params.append(pytest.param(info, id=info.name, marks=marks))
    return params


def _onnx(path: Path, cin: int, cout: int, hw: int, convs: int) -> None:
    onnx = pytest.importorskip("onnx", reason="onnx builds the test models (hwnas[torch])")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, weights, name, channels = [], [], "x", cin
    for index in range(convs):
        w = rng.standard_normal((cout, channels, 3, 3)).astype(np.float32) * 0.1
        weights.append(numpy_helper.from_array(w, f"w{index}"))
        out = "y" if index == convs - 1 else f"h{index}"
        nodes.append(helper.make_node("Conv", [name, f"w{index}"], [f"c{index}"], pads=[1] * 4))
        nodes.append(helper.make_node("Relu", [f"c{index}"], [out]))
        name, channels = out, cout
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, hw, hw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, hw, hw])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def _torch_module(cin: int, cout: int, convs: int) -> Any:
    torch = pytest.importorskip("torch", reason="torch builds the pt2 and tflite test models")

    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    for index in range(convs):
        layers += [
            torch.nn.Conv2d(cin if index == 0 else cout, cout, 3, padding=1),
            torch.nn.ReLU(),
        ]
    return torch.nn.Sequential(*layers).eval()


def make_model(fmt: str, name: str, folder: Path) -> Path:
    """Write model ``name`` (a key of SPECS) in format ``fmt`` into ``folder``.

    A test whose models need a package that is not installed (onnx, torch, litert-torch:
    a board may have only its runtime) is skipped, not failed.
    """
    cin, cout, hw, convs = SPECS[name]
    path = folder / f"{name}{SUFFIX[fmt]}"
    if fmt == "onnx":
        _onnx(path, cin, cout, hw, convs)
    elif fmt == "openvino":
        import openvino as ov

        source = folder / f"{name}.src.onnx"
        _onnx(source, cin, cout, hw, convs)
        ov.save_model(ov.Core().read_model(source), path)
    elif fmt == "pt2":
        torch = pytest.importorskip("torch", reason="torch builds the pt2 test models")
        example = (torch.randn(1, cin, hw, hw),)
        torch.export.save(torch.export.export(_torch_module(cin, cout, convs), example), path)
    elif fmt == "tflite":
        litert_torch = pytest.importorskip("litert_torch", reason="litert-torch makes TFLite files")
        torch = pytest.importorskip("torch", reason="torch builds the tflite test models")
        example = (torch.randn(1, cin, hw, hw),)
        litert_torch.convert(_torch_module(cin, cout, convs), example).export(str(path))
    else:
        raise ValueError(f"no test models for format {fmt!r}")
    return path


def kit_manifest(fmt: str, files: dict[str, Path]) -> tuple[KitManifest, dict[str, Path]]:
    """A manifest of two cells and one arch over ``files``, and the zip's file mapping."""
    entries, mapping = [], {}
    for key, kind, name in KIT_ENTRIES:
        cin, _, hw, _ = SPECS[name]
        arcname = f"{kind}s/{name}{SUFFIX[fmt]}"
        mapping[arcname] = files[name]
        if fmt == "openvino":
            mapping[arcname.removesuffix(".xml") + ".bin"] = files[name].with_suffix(".bin")
        arch = "conv3x3-relu,conv3x3-relu" if kind == "arch" else None
        entries.append(
            KitEntry(key=key, kind=kind, file=arcname, input_shape=[1, cin, hw, hw], arch=arch)
        )
    manifest = KitManifest(
        space="toy",
        params={"resolution": 16},
        format=fmt,
        created_at=datetime.now(UTC),
        entries=entries,
    )
    return manifest, mapping


def info_of(name: str) -> BackendInfo:
    """What ``list_backends()`` says about backend ``name``."""
    return next(info for info in list_backends() if info.name == name)
