"""Export of torch modules to ONNX, TFLite (fp32 and int8) and OpenVINO IR, and a runner.

Every exporter takes a module and one example input (NCHW float, fixed shape; the batch
size is the example's), puts the module in eval mode for the export and restores its mode
afterwards. The files keep NCHW float I/O (litert-torch adds the NHWC transposes inside the
TFLite graph), except the int8 TFLite file, whose input and output tensors are int8 with
their own scale and zero point; `run_exported` quantises/dequantises around them.

int8 is post-training static quantisation in PyTorch 2 Export (PT2E) form (Jacob et al.,
"Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference", 2018): litert-torch's `PT2EQuantizer` with symmetric per-channel int8 weights
and per-tensor affine int8 activations (histogram observers), BN folded into the convs by
`prepare_pt2e`. `models.quantize` fills the quantizer's gaps (residual adds, h-sigmoid,
h-swish) so an MBConv graph runs in int8 end to end, in one XNNPACK partition. Both
TFLite files split depthwise filters larger than 5x5 into row bands (`models.xnnpack`):
XNNPACK runs a 7x7 one 15-90x slower than a 5x5.

Heavy packages are imported inside the functions; a missing one raises `ExportError`
naming the pip extra to install.

Example:
    >>> import torch
    >>> from models.export import export, run_exported
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten()).eval()
    >>> x = torch.randn(1, 3, 8, 8)
    >>> paths = export(net, x, "/tmp/hwnas-doctest", ["onnx"])  # doctest: +SKIP
    >>> y = run_exported(paths["onnx"], x.numpy())  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from .xnnpack import xnnpack_ready

# Revision of the graphs the TFLite exporters write; bumped when a rewrite changes their
# latency (2: wide depthwise filters banded), so caches keyed on it re-measure.
TFLITE_GRAPHS = 2
FORMATS: tuple[str, ...] = ("onnx", "tflite", "tflite-int8", "openvino")
FILE_NAMES: dict[str, str] = {
    "onnx": "model.onnx",
    "tflite": "model.tflite",
    "tflite-int8": "model-int8.tflite",
    "openvino": "model.xml",
}
RUNNABLE_SUFFIXES: tuple[str, ...] = (".onnx", ".tflite", ".xml")
# Relative L2 error of an exported file's output against torch's on the same input.
# fp32 files differ only by operator order and BN folding (up to 5e-6 seen). int8 files
# of an untrained net calibrated on random inputs differ by quantisation: 19% (mbv2 at
# 224, `make demo`) and 20% (nb201) seen, so that bound is a sanity one; trained nets are
# judged on validation accuracy instead.
TOLERANCE: dict[str, float] = {"onnx": 1e-4, "tflite": 1e-4, "openvino": 1e-4,
                               "tflite-int8": 0.35}


def calibration_batches(x: np.ndarray, *, batch: int = 8) -> list[torch.Tensor]:
    """Inputs (N, C, H, W) split into batches of about `batch`, for BN recalibration and int8."""
    return [torch.from_numpy(b) for b in np.array_split(x, max(1, len(x) // batch))]


def exported_bytes(fmt: str, path: Path) -> int:
    """Size of an exported model; OpenVINO IR keeps its weights in a .bin beside the .xml."""
    parts = [path, path.with_suffix(".bin")] if fmt == "openvino" else [path]
    return sum(p.stat().st_size for p in parts)


def check_exported(module: nn.Module, files: dict[str, Path], x: np.ndarray, *,
                   threads: int = 1) -> dict[str, dict[str, Any]]:
    """Run each exported file on its runtime and compare it with `module`'s output on `x`.

    Returns per format: `path` (the file name), `bytes`, `max_abs_err`, `rel_err`
    (`||y_file - y_torch|| / ||y_torch||`), `tolerance` (`TOLERANCE`) and `ok`.
    """
    module.eval()
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    out: dict[str, dict[str, Any]] = {}
    for fmt, path in files.items():
        y = run_exported(path, x, threads=threads)
        rel = float(np.linalg.norm(y - ref) / max(float(np.linalg.norm(ref)), 1e-12))
        out[fmt] = {"path": path.name, "bytes": exported_bytes(fmt, path),
                    "max_abs_err": float(np.abs(y - ref).max()), "rel_err": rel,
                    "tolerance": TOLERANCE[fmt], "ok": rel <= TOLERANCE[fmt]}
    return out


class ExportError(RuntimeError):
    """An export or a run of an exported file failed; the message names the format."""


def _require(module: str, *, extra: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ExportError(
            f"{what} needs the package {module.split('.')[0]!r}: install hwnas[{extra}]"
        ) from exc


def _check_example(example: Any) -> None:
    if not isinstance(example, torch.Tensor) or not example.is_floating_point():
        raise ValueError(f"example must be a floating-point torch.Tensor, got {example!r}")


@contextmanager
def _exporting(fmt: str, module: nn.Module, example: torch.Tensor,
               path: str | Path) -> Iterator[Path]:
    """Validates the input, yields the output path (parents made) with the module in
    eval mode, restores the module's mode, and wraps any failure in `ExportError`."""
    _check_example(example)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    was_training = module.training
    module.eval()
    try:
        yield out
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"{fmt} export to {out} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        module.train(was_training)


def export_onnx(module: nn.Module, example: torch.Tensor, path: str | Path, *,
                opset: int | None = None) -> Path:
    """Exports `module` to one self-contained ONNX file with the dynamo exporter.

    Weights stay inside the file (`external_data=False`; fine below protobuf's 2 GB limit).
    The graph is checked with `onnx.checker` before returning.

    Args:
        module: The network; exported in eval mode.
        example: One input of the fixed shape the file will accept.
        path: Output file, usually `model.onnx`.
        opset: ONNX opset; None takes the exporter's default.

    Returns:
        The path written.
    """
    _require("onnxscript", extra="torch", what="ONNX export")
    onnx = _require("onnx", extra="torch", what="ONNX export")
    with _exporting("onnx", module, example, path) as out:
        torch.onnx.export(module, (example,), str(out), dynamo=True, external_data=False,
                          opset_version=opset, input_names=["input"],
                          output_names=["output"], verbose=False)
        onnx.checker.check_model(str(out))
    return out


def export_tflite(module: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """Exports `module` to an fp32 TFLite flatbuffer with litert-torch.

    Args:
        module: The network; exported in eval mode.
        example: One input of the fixed shape the file will accept (NCHW stays NCHW).
        path: Output file, usually `model.tflite`.

    Returns:
        The path written.
    """
    litert_torch = _require("litert_torch", extra="export", what="TFLite export")
    with _exporting("tflite", module, example, path) as out:
        litert_torch.convert(xnnpack_ready(module), (example,)).export(str(out))
    return out


def export_tflite_int8(module: nn.Module, example: torch.Tensor, path: str | Path, *,
                       calibration: Iterable[torch.Tensor]) -> Path:
    """Exports `module` to a statically quantised int8 TFLite file (PT2E post-training).

    Args:
        module: The network; exported in eval mode.
        example: One input of the fixed shape the file will accept.
        path: Output file, usually `model-int8.tflite`.
        calibration: Input batches representative of real data. Each must have the
            example's shape except the batch size, which must be a multiple of the
            example's (the exported graph has a fixed batch; batches are split to it).

    Returns:
        The path written.

    Raises:
        ValueError: `calibration` is empty or a batch has the wrong shape.
    """
    _check_example(example)
    batches = _check_calibration(list(calibration), example)
    litert_torch, quantize_pt2e, quant_config = (
        _require(name, extra="export", what="TFLite int8 export")
        for name in ("litert_torch", "torchao.quantization.pt2e.quantize_pt2e",
                     "litert_torch.quantize.quant_config"))
    from .quantize import int8_quantizer, int8_ready

    with _exporting("tflite-int8", module, example, path) as out:
        quantizer = int8_quantizer()
        graph = torch.export.export(int8_ready(xnnpack_ready(module)), (example,)).module()
        prepared = quantize_pt2e.prepare_pt2e(graph, quantizer)  # folds BN into convs
        with torch.no_grad():
            for cal in batches:
                for chunk in cal.split(example.shape[0]):
                    prepared(chunk.to(example.dtype))
        converted = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
        config = quant_config.QuantConfig(pt2e_quantizer=quantizer)
        litert_torch.convert(converted, (example,), quant_config=config).export(str(out))
    return out


def _check_calibration(batches: list[Any], example: torch.Tensor) -> list[torch.Tensor]:
    if not batches:
        raise ValueError("calibration must hold at least one input batch")
    batch, rest = example.shape[0], tuple(example.shape[1:])
    for i, cal in enumerate(batches):
        if not isinstance(cal, torch.Tensor):
            raise ValueError(f"calibration[{i}] must be a torch.Tensor, got {type(cal).__name__}")
        if tuple(cal.shape[1:]) != rest or cal.shape[0] % batch:
            raise ValueError(f"calibration[{i}] has shape {tuple(cal.shape)}; "
                             f"need (k*{batch}, *{rest})")
    return batches


def export_openvino(module: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """Exports `module` to OpenVINO IR (`path` = .xml, weights beside it in .bin).

    Converted directly from torch with the input shape fixed to the example's; weights
    stay fp32 (`compress_to_fp16=False`). `convert_model` sends OpenVINO's opt-out usage
    telemetry unless it is turned off (`opt_in_out --opt_out`, or CI=true).

    Args:
        module: The network; exported in eval mode.
        example: One input of the fixed shape the file will accept.
        path: Output .xml file, usually `model.xml`.

    Returns:
        The .xml path written.
    """
    if Path(path).suffix != ".xml":
        raise ValueError(f"path must end in .xml for OpenVINO IR, got {str(path)!r}")
    ov = _require("openvino", extra="openvino", what="OpenVINO export")
    with _exporting("openvino", module, example, path) as out, torch.no_grad():
        # An nn.Module goes through OpenVINO's TorchScript-trace frontend: ~1 s and a static
        # shape. Its torch.export frontend takes ~7 s and leaves the shape dynamic.
        model = ov.convert_model(module, example_input=example, input=[tuple(example.shape)])
        ov.save_model(model, str(out), compress_to_fp16=False)
    return out


def export(module: nn.Module, example: torch.Tensor, out_dir: str | Path,
           formats: Iterable[str], *,
           calibration: Iterable[torch.Tensor] | None = None) -> dict[str, Path]:
    """Exports `module` to each of `formats` under `out_dir` with the names in FILE_NAMES.

    Args:
        module: The network; exported in eval mode.
        example: One input of the fixed shape the files will accept.
        out_dir: Directory for the files (created if missing).
        formats: Names from FORMATS (or one name); validated before anything is written.
        calibration: Input batches for "tflite-int8" (required for it, unused otherwise).

    Returns:
        Format name -> path written, in the order given.

    Raises:
        ValueError: An unknown format, or "tflite-int8" without calibration.
    """
    wanted = [formats] if isinstance(formats, str) else list(dict.fromkeys(formats))
    for fmt in wanted:
        if fmt not in FORMATS:
            raise ValueError(f"unknown export format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if "tflite-int8" in wanted and calibration is None:
        raise ValueError("format 'tflite-int8' needs calibration batches (calibration=...)")
    out = Path(out_dir)
    paths: dict[str, Path] = {}
    for fmt in wanted:
        target = out / FILE_NAMES[fmt]
        if fmt == "onnx":
            paths[fmt] = export_onnx(module, example, target)
        elif fmt == "tflite":
            paths[fmt] = export_tflite(module, example, target)
        elif fmt == "tflite-int8":
            paths[fmt] = export_tflite_int8(module, example, target,
                                            calibration=calibration or ())
        else:
            paths[fmt] = export_openvino(module, example, target)
    return paths


def run_exported(path: str | Path, x: np.ndarray, *, threads: int = 1) -> np.ndarray:
    """Runs an exported file once on CPU with its own runtime and returns the first output.

    `load_exported(path, threads=threads)(x)`; see there.
    """
    return load_exported(path, threads=threads)(x)


def load_exported(path: str | Path, *, threads: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """Loads an exported file on CPU with its own runtime; the result runs it on an input.

    `.onnx` runs on onnxruntime's CPU execution provider, `.tflite` on LiteRT's
    interpreter (XNNPACK), `.xml` on OpenVINO's CPU plugin with f32 inference precision.
    Int8 TFLite I/O is quantised/dequantised with the tensors' own parameters. Load once
    and call many times to evaluate a val split (a session per input costs more than
    the inference).

    Args:
        path: A file written by one of the exporters.
        threads: CPU threads for the runtime (intra-op; inter-op is 1).

    Returns:
        A function from a float input of the exported shape to the first output (float32).

    Raises:
        ValueError: Unknown suffix, bad `threads`, or (when called) an input of another shape.
        FileNotFoundError: `path` does not exist.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in RUNNABLE_SUFFIXES:
        raise ValueError(f"cannot run {str(file)!r}: suffix {suffix!r} is not one of "
                         f"{', '.join(RUNNABLE_SUFFIXES)}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an int >= 1, got {threads!r}")
    if not file.is_file():
        raise FileNotFoundError(f"no exported model at {str(file)!r}")
    load = {".onnx": _load_onnx, ".tflite": _load_tflite, ".xml": _load_openvino}[suffix]
    run = load(file, threads)

    def call(x: np.ndarray) -> np.ndarray:
        return run(np.ascontiguousarray(x, dtype=np.float32))

    return call


def _load_onnx(file: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    ort = _require("onnxruntime", extra="onnxruntime", what="running .onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        (out, *_) = session.run(None, {name: x})
        return np.asarray(out, dtype=np.float32)

    return run


def _load_tflite(file: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    interpreter_mod = _require("ai_edge_litert.interpreter", extra="tflite",
                               what="running .tflite")
    interpreter = interpreter_mod.Interpreter(model_path=str(file), num_threads=threads)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def run(x: np.ndarray) -> np.ndarray:
        if tuple(inp["shape"]) != x.shape:
            raise ValueError(f"{file.name} takes shape {tuple(inp['shape'])}, got {x.shape}")
        interpreter.set_tensor(inp["index"], _quantise(x, inp))
        interpreter.invoke()
        return _dequantise(interpreter.get_tensor(out["index"]), out)

    return run


def _quantise(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def _dequantise(y: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    if np.dtype(detail["dtype"]).kind == "f":
        return y.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)


def _load_openvino(file: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    ov = _require("openvino", extra="openvino", what="running .xml")
    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads,
              "NUM_STREAMS": 1}
    compiled = ov.Core().compile_model(str(file), "CPU", config)
    output = compiled.output(0)

    def run(x: np.ndarray) -> np.ndarray:
        return np.asarray(compiled(x)[output], dtype=np.float32)

    return run
