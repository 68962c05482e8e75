"""Export: every format written once per module, then run by its real runtime against torch."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from models.blocks import MBConv, MBConvSpec, conv_bn
from models.export import (
    FILE_NAMES,
    FORMATS,
    ExportError,
    export,
    export_onnx,
    export_openvino,
    export_tflite,
    export_tflite_int8,
    run_exported,
)

SHAPE = (1, 3, 32, 32)
# fp32 files against eager torch. Measured max abs error on logits up to 0.29: ONNX 6e-8,
# OpenVINO 3e-8, TFLite 6e-8, its 7x7 block banded (BN folding, the bands and the
# runtimes' own summation order only reorder fp32 roundings). 1e-4 leaves room for other
# CPUs' SIMD paths (AVX-512, AVX2, NEON, with or without FMA) and is still orders of
# magnitude below what a real bug (a train-mode or unfolded BN, a wrong layout or
# activation) does to these logits.
FP32_TOL = {"rtol": 1e-4, "atol": 1e-4}
# int8 against fp32 torch: relative L2 error of the logits. Measured 0.007 here (16/16
# top-1 agreement).
INT8_REL_L2 = 0.1


class _TinyNet(nn.Module):
    """Stem conv-BN-h-swish, one of the space's own MBConv blocks (expand, depthwise, SE,
    project, residual) and a strided 7x7 one (banded in TFLite files: `models.xnnpack`),
    pooled into a classifier."""

    def __init__(self, ch: int = 32, expand: int = 3, classes: int = 10) -> None:
        super().__init__()
        self.stem = conv_bn(3, ch, 3, 2, act="hswish")
        self.block = MBConv(MBConvSpec(ch, ch, 1, 3, expand, True, "hswish"))
        self.wide = MBConv(MBConvSpec(ch, ch, 2, 7, expand, False, "relu"))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(ch, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.wide(self.block(self.stem(x)))
        return self.head(torch.flatten(self.pool(x), 1))


def _inputs(n: int, seed: int) -> torch.Tensor:
    """Image-like batches: per-channel offsets and scales, like unnormalised pixels."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *SHAPE[1:], generator=g) * torch.tensor([1.0, 0.7, 1.3]).view(
        1, 3, 1, 1) + torch.tensor([0.2, -0.1, 0.0]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def net() -> nn.Module:
    torch.manual_seed(0)
    model = _TinyNet()
    for m in model.modules():  # non-trivial BN affine params, so folding matters
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, 0.0, 0.2)
    model.train()
    with torch.no_grad():  # non-trivial running stats
        for i in range(5):
            model(_inputs(16, seed=100 + i) * 1.5 + 0.3)
    return model.eval()


@pytest.fixture(scope="module")
def example() -> torch.Tensor:
    return _inputs(1, seed=1)


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def fp32_files(net: nn.Module, example: torch.Tensor, out_dir: Path) -> dict[str, Path]:
    """ONNX and OpenVINO IR: seconds. TFLite conversion takes longer; see `tflite_file`."""
    return export(net, example, out_dir, ["onnx", "openvino"])


@pytest.fixture(scope="module")
def tflite_file(net: nn.Module, example: torch.Tensor, out_dir: Path) -> Path:
    return export(net, example, out_dir, "tflite")["tflite"]


@pytest.fixture(scope="module")
def int8_file(net: nn.Module, example: torch.Tensor, out_dir: Path) -> Path:
    calibration = [_inputs(8, seed=200 + i) for i in range(4)]
    return export_tflite_int8(net, example, out_dir / FILE_NAMES["tflite-int8"],
                              calibration=calibration)


def _assert_matches_torch(net: nn.Module, path: Path, xs: torch.Tensor) -> None:
    for x in xs.split(1):
        with torch.no_grad():
            want = net(x).numpy()
        got = run_exported(path, x.numpy())
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, **FP32_TOL)


def test_export_writes_the_default_file_names(fp32_files: dict[str, Path]) -> None:
    assert set(FILE_NAMES) == set(FORMATS)
    for fmt, path in fp32_files.items():
        assert path.name == FILE_NAMES[fmt]
        assert path.is_file()


def test_onnx_is_one_checked_file_equal_to_torch(net: nn.Module,
                                                 fp32_files: dict[str, Path]) -> None:
    onnx = pytest.importorskip("onnx")
    path = fp32_files["onnx"]
    assert sorted(p.name for p in path.parent.glob("model.onnx*")) == ["model.onnx"]
    model = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(model)
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    _assert_matches_torch(net, path, _inputs(4, seed=7))


def test_openvino_ir_equals_torch(net: nn.Module, fp32_files: dict[str, Path]) -> None:
    path = fp32_files["openvino"]
    assert path.with_suffix(".bin").is_file()
    _assert_matches_torch(net, path, _inputs(4, seed=7))


@pytest.mark.slow
def test_tflite_equals_torch_with_nchw_float_io(net: nn.Module, tflite_file: Path) -> None:
    interpreter_mod = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter = interpreter_mod.Interpreter(model_path=str(tflite_file), num_threads=1)
    (inp,) = interpreter.get_input_details()
    assert tuple(inp["shape"]) == SHAPE  # litert-torch keeps NCHW; transposes are inside
    assert np.dtype(inp["dtype"]) == np.float32
    _assert_matches_torch(net, tflite_file, _inputs(4, seed=7))


@pytest.mark.slow
@pytest.mark.parametrize("which", ["fp32", "int8"])
def test_tflite_depthwise_filters_stay_within_xnnpack_fast_kernels(
        which: str, tflite_file: Path, int8_file: Path) -> None:
    interpreter_mod = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter = interpreter_mod.Interpreter(
        model_path=str(tflite_file if which == "fp32" else int8_file), num_threads=1)
    interpreter.allocate_tensors()
    shapes = {t["index"]: tuple(t["shape"]) for t in interpreter.get_tensor_details()}
    filters = [shapes[op["inputs"][1]] for op in interpreter._get_ops_details()
               if op["op_name"] == "DEPTHWISE_CONV_2D"]
    taps = sorted(kh * kw for _, kh, kw, _ in filters)  # TFLite filters are 1 x H x W x C
    assert taps == [7, 9, 21, 21]  # the 3x3 block's, and the 7x7 one's bands


def test_two_threads_give_the_same_results(fp32_files: dict[str, Path],
                                           example: torch.Tensor) -> None:
    for path in fp32_files.values():
        one = run_exported(path, example.numpy(), threads=1)
        np.testing.assert_allclose(run_exported(path, example.numpy(), threads=2), one,
                                   **FP32_TOL)


@pytest.mark.slow
def test_tflite_int8_is_quantised_smaller_and_close(net: nn.Module, int8_file: Path,
                                                    tflite_file: Path) -> None:
    interpreter_mod = pytest.importorskip("ai_edge_litert.interpreter")
    # Weights shrink 4x; per-channel scales, int32 biases and the flatbuffer do not.
    assert int8_file.stat().st_size < 0.75 * tflite_file.stat().st_size
    interpreter = interpreter_mod.Interpreter(model_path=str(int8_file), num_threads=1)
    dtypes = [np.dtype(d["dtype"]) for d in interpreter.get_tensor_details()]
    assert dtypes.count(np.dtype(np.int8)) > dtypes.count(np.dtype(np.float32))
    assert np.dtype(interpreter.get_input_details()[0]["dtype"]) == np.int8

    xs = _inputs(16, seed=300)  # same distribution as the calibration, unseen samples
    with torch.no_grad():
        want = net(xs).numpy()
    got = np.concatenate([run_exported(int8_file, x.numpy()) for x in xs.split(1)])
    rel_l2 = np.linalg.norm(got - want) / np.linalg.norm(want)
    assert rel_l2 < INT8_REL_L2
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.75


@pytest.mark.slow
def test_tflite_int8_runs_integer_only_in_one_xnnpack_partition(int8_file: Path) -> None:
    """The SE gate's h-sigmoid, the h-swishes and the residual add are int8 too: no float
    island, no HARD_SWISH (XNNPACK does not take it in int8), no layout transposes but the
    input's and output's, and so one delegated partition."""
    interpreter_mod = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter = interpreter_mod.Interpreter(model_path=str(int8_file), num_threads=1)
    interpreter.allocate_tensors()
    # The op list is only exposed privately; it holds the model's own ops, then the
    # delegate nodes that replaced them.
    ops = interpreter._get_ops_details()
    names = [op["op_name"] for op in ops]
    assert names.count("DELEGATE") == 1
    assert not {"QUANTIZE", "DEQUANTIZE", "HARD_SWISH"} & set(names)
    assert names.count("TRANSPOSE") <= 2
    tensors = {t["index"]: np.dtype(t["dtype"]) for t in interpreter.get_tensor_details()}
    float_ops = [op["op_name"] for op in ops if op["op_name"] != "DELEGATE" and any(
        tensors[i] == np.float32 for i in (*op["inputs"], *op["outputs"]) if i >= 0)]
    assert float_ops == []


def test_export_rejects_unknown_formats_before_writing(net: nn.Module, example: torch.Tensor,
                                                       tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'tflite16'.*onnx, tflite, tflite-int8, openvino"):
        export(net, example, tmp_path / "out", ["onnx", "tflite16"])
    with pytest.raises(ValueError, match="calibration"):
        export(net, example, tmp_path / "out", ["onnx", "tflite-int8"])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("calibration", [[], [torch.zeros(1, 3, 16, 16)], ["not a tensor"]])
def test_int8_rejects_bad_calibration(net: nn.Module, example: torch.Tensor, tmp_path: Path,
                                      calibration: list[object]) -> None:
    with pytest.raises(ValueError, match="calibration"):
        export_tflite_int8(net, example, tmp_path / "m.tflite",
                           calibration=calibration)  # type: ignore[arg-type]


def test_exporters_reject_a_non_float_example(net: nn.Module, tmp_path: Path) -> None:
    bad = torch.zeros(SHAPE, dtype=torch.int64)
    for exporter in (export_onnx, export_tflite, export_openvino):
        with pytest.raises(ValueError, match="example"):
            exporter(net, bad, tmp_path / "model.xml")


def test_a_failing_conversion_raises_export_error_naming_the_format(
        example: torch.Tensor, tmp_path: Path) -> None:
    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("no forward here")

    broken = Broken().train()
    with pytest.raises(ExportError, match=r"^onnx export"):
        export_onnx(broken, example, tmp_path / "model.onnx")
    assert broken.training  # mode restored


def test_run_exported_rejects_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    x = np.zeros(SHAPE, np.float32)
    (tmp_path / "model.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"'\.pt'.*\.onnx, \.tflite, \.xml"):
        run_exported(tmp_path / "model.pt", x)
    with pytest.raises(FileNotFoundError):
        run_exported(tmp_path / "missing.onnx", x)
    with pytest.raises(ValueError, match="threads"):
        run_exported(tmp_path / "missing.onnx", x, threads=0)


def test_missing_runtime_names_the_extra(fp32_files: dict[str, Path], example: torch.Tensor,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import` fail
    with pytest.raises(ExportError, match=r"hwnas\[onnxruntime\]"):
        run_exported(fp32_files["onnx"], example.numpy())
