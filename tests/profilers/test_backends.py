"""Every registered backend on real model files: sane numbers, settings read back, clear errors.

Parametrised over ``list_backends()``, so a new backend is tested here as soon as it is
registered; backends whose runtime is missing are skipped with the reason it gives.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from profilers.base import BackendInfo, get_backend, list_backends, register_backend
from profilers.errors import BackendError, BackendUnavailable, ModelLoadError
from profilers.formats import ProtocolSettings
from profilers.protocol import measure
from profilers.tflite import quantize
from tests.profilers.builders import SUFFIX, backend_params
from tests.profilers.conftest import ModelFiles

FAST = ProtocolSettings(warmup_runs=2, warmup_ms=5.0, runs=20, min_runs=5)


def _fmt(info: BackendInfo) -> str:
    return info.formats[0]


@pytest.mark.parametrize("info", backend_params(real_models=True))
def test_measures_a_real_model(info: BackendInfo, model_files: ModelFiles) -> None:
    runner = get_backend(info.name).load(
        model_files(_fmt(info))["big"], threads=1, precision="fp32"
    )
    stats = measure(runner, FAST)
    assert stats.median_ms > 0
    assert stats.p10_ms <= stats.median_ms <= stats.p90_ms
    assert stats.runs >= FAST.min_runs
    assert runner.device.upper() == "CPU"


@pytest.mark.parametrize("info", backend_params(real_models=True))
@pytest.mark.parametrize("threads", [1, 2])
def test_threads_are_set(info: BackendInfo, threads: int, model_files: ModelFiles) -> None:
    runner = get_backend(info.name).load(
        model_files(_fmt(info))["small"], threads=threads, precision="fp32"
    )
    described = runner.describe()
    assert described.get("threads", described.get("INFERENCE_NUM_THREADS")) == str(threads)


@pytest.mark.parametrize("info", backend_params(real_models=True))
def test_one_thread_uses_one_core(info: BackendInfo, model_files: ModelFiles) -> None:
    """CPU time over wall time stays near 1 with one thread (a pool of 2 spinning shows ~2)."""
    runner = get_backend(info.name).load(
        model_files(_fmt(info))["big"], threads=1, precision="fp32"
    )
    prepared = runner.prepare(runner.example_input())
    runner.run(prepared)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(20):
        runner.run(prepared)
    assert (time.process_time() - cpu) / (time.perf_counter() - wall) < 1.4


@pytest.mark.parametrize("info", backend_params(real_models=False))
def test_refused_model_file(info: BackendInfo, tmp_path: Path) -> None:
    bad = tmp_path / f"garbage{SUFFIX[_fmt(info)]}"
    bad.write_bytes(b"\x00garbage, not a model\xff" * 10)
    with pytest.raises(ModelLoadError, match=f"{info.name} refused {bad.name}") as error:
        get_backend(info.name).load(bad, threads=1, precision="fp32")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("info", backend_params(real_models=False))
def test_bad_settings(info: BackendInfo, tmp_path: Path) -> None:
    backend = get_backend(info.name)
    model = tmp_path / f"unused{SUFFIX[_fmt(info)]}"
    with pytest.raises(BackendError, match="threads must be >= 1"):
        backend.load(model, threads=0, precision="fp32")
    with pytest.raises(BackendError, match=r"unknown device|no device"):
        backend.load(model, threads=1, precision="fp32", device="warp-drive")
    missing = [p for p in ("fp32", "fp16", "bf16", "int8") if p not in backend.precisions]
    for precision in missing:
        with pytest.raises(BackendError, match=f"cannot run precision '{precision}'"):
            backend.load(model, threads=1, precision=precision)
    if info.name != "tflite":
        with pytest.raises(BackendError, match="takes no delegate"):
            backend.load(model, threads=1, precision="fp32", delegate=tmp_path / "d.so")


def test_registry_lists_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    names = [info.name for info in list_backends()]
    assert names == sorted(names) and {"onnxruntime", "openvino", "tflite", "torch"} <= set(names)
    with pytest.raises(BackendError, match="unknown backend 'nope'; known backends: onnxruntime"):
        get_backend("nope")

    import profilers.base

    monkeypatch.setattr(profilers.base, "_REGISTRY", dict(profilers.base._REGISTRY))

    @register_backend
    class Missing:
        name = "missing-runtime"
        formats = ("onnx",)
        precisions = ("fp32",)
        install = "pip install missing-runtime"

        def available(self) -> tuple[bool, str]:
            return profilers.base.probe_import("missing_runtime_xyz", self.install)

    with pytest.raises(
        BackendUnavailable,
        match=r"No module named 'missing_runtime_xyz'.*pip install missing-runtime",
    ):
        get_backend("missing-runtime")
    with pytest.raises(ValueError, match="registered twice"):
        register_backend(Missing)


def _available(name: str) -> bool:
    return next(info.available for info in list_backends() if info.name == name)


needs_ort = pytest.mark.skipif(not _available("onnxruntime"), reason="onnxruntime not installed")
needs_ov = pytest.mark.skipif(not _available("openvino"), reason="openvino not installed")
needs_tflite = pytest.mark.skipif(
    not _available("tflite"), reason="no TFLite interpreter installed"
)
needs_torch = pytest.mark.skipif(not _available("torch"), reason="torch not installed")


@needs_ort
def test_onnxruntime_session_options_read_back(model_files: ModelFiles) -> None:
    described = (
        get_backend("onnxruntime")
        .load(model_files("onnx")["small"], threads=2, precision="fp32")
        .describe()
    )
    assert described["threads"] == "2"
    assert described["inter_op_threads"] == "1"
    assert described["execution_mode"].endswith("ORT_SEQUENTIAL")
    assert described["providers"] == "CPUExecutionProvider"


@needs_ov
def test_openvino_precision_hint_read_back(model_files: ModelFiles) -> None:
    backend = get_backend("openvino")
    runner = backend.load(model_files("onnx")["small"], threads=1, precision="fp32")
    assert runner.compiled.get_property("INFERENCE_PRECISION_HINT").to_string() == "f32"
    assert runner.describe()["PERFORMANCE_HINT"] == "LATENCY"
    assert runner.describe()["NUM_STREAMS"] == "1"
    try:  # bf16 runs where the CPU has bf16 units, and is refused (not mislabelled) elsewhere
        bf16 = backend.load(model_files("onnx")["small"], threads=1, precision="bf16")
    except BackendError as error:
        assert "runs f32 when asked for bf16" in str(error)
    else:
        assert bf16.describe()["INFERENCE_PRECISION_HINT"] == "bf16"


@needs_ov
def test_openvino_reads_ir_and_onnx(model_files: ModelFiles) -> None:
    for fmt in ("openvino", "onnx"):
        runner = get_backend("openvino").load(
            model_files(fmt)["small"], threads=1, precision="fp32"
        )
        assert runner.input_shape == (1, 8, 16, 16)


@needs_tflite
def test_tflite_delegate_errors(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    backend = get_backend("tflite")
    with pytest.raises(BackendError, match="tflite delegate not found"):
        backend.load(
            tmp_path / "m.tflite", threads=1, precision="fp32", delegate=tmp_path / "nope.so"
        )
    not_a_library = tmp_path / "libfake_delegate.so"
    not_a_library.write_text("not an ELF file")
    with pytest.raises(BackendError, match="tflite cannot load delegate"):
        backend.load(tmp_path / "m.tflite", threads=1, precision="fp32", delegate=not_a_library)
    assert "Exception ignored" not in capfd.readouterr().err


def test_quantize_uses_scale_and_zero_point() -> None:
    x = np.array([-1000.0, -1.0, 0.0, 0.26, 1000.0])
    assert quantize(x, scale=0.5, zero_point=10, dtype=np.dtype(np.int8)).tolist() == [
        -128,
        8,
        10,
        11,
        127,
    ]
    assert quantize(x, scale=0.5, zero_point=128, dtype=np.dtype(np.uint8)).tolist() == [
        0,
        126,
        128,
        129,
        255,
    ]


@needs_torch
def test_torch_bf16_on_cpu_and_no_fp16(model_files: ModelFiles) -> None:
    backend = get_backend("torch")
    runner = backend.load(model_files("pt2")["small"], threads=1, precision="bf16")
    assert runner.describe()["dtype"] == "bfloat16"
    assert measure(runner, FAST).median_ms > 0
    with pytest.raises(BackendError, match="fp16 on CUDA only"):
        backend.load(model_files("pt2")["small"], threads=1, precision="fp16")


@needs_torch
def test_torch_cuda_unavailable_is_explained(model_files: ModelFiles) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present (the CUDA path is tested by the gpu tests)")
    with pytest.raises(BackendUnavailable, match="sees no CUDA device"):
        get_backend("torch").load(
            model_files("pt2")["small"], threads=1, precision="fp32", device="cuda"
        )


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="no CUDA device (torch.cuda.is_available() is False)")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_torch_cuda_measures_with_events(precision: str, model_files: ModelFiles) -> None:
    runner = get_backend("torch").load(
        model_files("pt2")["big"], threads=1, precision=precision, device="cuda"
    )
    assert runner.device == "cuda:0"
    assert (
        runner.describe()["dtype"]
        == {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}[precision]
    )
    stats = measure(runner, FAST)
    assert 0 < stats.p10_ms <= stats.median_ms <= stats.p90_ms
    assert stats.median_ms < 50


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="no CUDA device (torch.cuda.is_available() is False)")
def test_onnxruntime_cuda(model_files: ModelFiles) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime here has no CUDA execution provider (onnxruntime-gpu)")
    runner = get_backend("onnxruntime").load(
        model_files("onnx")["big"], threads=1, precision="fp32", device="cuda"
    )
    assert runner.device == "cuda:0"
    assert runner.describe()["providers"].startswith("CUDAExecutionProvider")
    assert measure(runner, FAST).median_ms > 0
