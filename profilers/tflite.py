"""TFLite / LiteRT backend: ``ai-edge-litert``'s interpreter, or the older ``tflite-runtime``.

``ai_edge_litert.interpreter.Interpreter`` is used when installed; boards that only have
``tflite_runtime`` (older Python, numpy<2) get that one, with the same API. The
interpreter runs with ``num_threads=threads``; XNNPACK is its default CPU delegate. An
external delegate (a vendor's DSP/NPU ``.so``) is loaded with ``load_delegate`` and
recorded as the device ``delegate:<file name>``.

Quantised models (int8/uint8 inputs) are fed random inputs quantised with the input
tensor's own scale and zero point, so they see values in their calibrated range.
Precision is the file's own: the interpreter does not convert a model.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from profilers.base import (
    HostTimedRunner,
    check_settings,
    refused,
    register_backend,
    resolve_shape,
    smoke_test,
)
from profilers.errors import BackendError, ModelLoadError, first_line

__all__ = ["TfliteBackend", "quantize"]

# (module, pip distribution), in order of preference.
_RUNTIMES = (
    ("ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime.interpreter", "tflite-runtime"),
)


def _runtime() -> tuple[Any, str]:
    """The interpreter module and its pip distribution name: the first that imports."""
    errors = []
    for module, dist in _RUNTIMES:
        try:
            return importlib.import_module(module), dist
        except Exception as exc:  # a broken install is "not available" too
            errors.append(f"{module}: {first_line(exc)}")
    raise ImportError("; ".join(errors))


def quantize(x: np.ndarray, *, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """Quantise real values ``x`` to the integer ``dtype`` as TFLite does.

    ``q = clip(round(x / scale) + zero_point)``; with ``scale == 0`` (no quantisation
    parameters) ``x`` is rounded and clipped as is.

    Example:
        >>> quantize(np.array([0.0, 1.0, -1.0]), scale=0.5, zero_point=3, dtype=np.int8)
        array([3, 5, 1], dtype=int8)
    """
    info = np.iinfo(dtype)
    scaled = x / scale + zero_point if scale > 0 else x
    return np.clip(np.round(scaled), info.min, info.max).astype(dtype)


class _TfliteRunner(HostTimedRunner):
    """One interpreter with its tensors allocated; ``prepare`` writes the input tensor."""

    def __init__(self, interpreter: Any, *, device: str, threads: int, runtime: str) -> None:
        self._interpreter = interpreter
        self._input = interpreter.get_input_details()[0]
        self.device = device
        self.input_shape = tuple(int(d) for d in self._input["shape"])
        self.input_dtype = np.dtype(self._input["dtype"])
        self._threads = threads
        self._runtime = runtime

    def example_input(self, seed: int = 0) -> np.ndarray:
        real = np.random.default_rng(seed).standard_normal(self.input_shape)
        if not np.issubdtype(self.input_dtype, np.integer):
            return real.astype(self.input_dtype)
        scale, zero_point = self._input["quantization"]
        return quantize(real, scale=scale, zero_point=zero_point, dtype=self.input_dtype)

    def prepare(self, x: np.ndarray) -> object:
        self._interpreter.set_tensor(self._input["index"], x)
        return x

    def run(self, prepared: object) -> None:
        self._interpreter.invoke()

    def describe(self) -> dict[str, str]:
        # The interpreter cannot report its thread count: this is the value it was given.
        return {
            "device": self.device,
            "threads": str(self._threads),
            "runtime": self._runtime,
            "input_dtype": str(self.input_dtype),
        }


@register_backend
class TfliteBackend:
    """LiteRT (``pip install ai-edge-litert``) or the TFLite runtime (``tflite-runtime``)."""

    name = "tflite"
    formats = ("tflite",)
    precisions = ("fp32", "fp16", "int8")
    install = "pip install ai-edge-litert (or hwnas[tflite]); on numpy<2 boards tflite-runtime"

    def available(self) -> tuple[bool, str]:
        try:
            _runtime()
        except ImportError as exc:
            return False, f"cannot import a TFLite interpreter ({exc}); install: {self.install}"
        return True, ""

    def version(self) -> str:
        from importlib.metadata import PackageNotFoundError, version

        _, dist = _runtime()
        try:
            return f"{dist} {version(dist)}"
        except PackageNotFoundError:  # vendored into a board image without metadata
            return f"{dist} unknown"

    def load(
        self,
        path: Path,
        *,
        threads: int,
        precision: str,
        device: str | None = None,
        delegate: Path | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> _TfliteRunner:
        runtime, dist = _runtime()
        check_settings(
            self, threads=threads, precision=precision, delegate=delegate, delegates=True
        )
        if (device or "cpu").lower() != "cpu":
            raise BackendError(
                f"tflite: unknown device {device!r}; the CPU is the default, other devices "
                "are reached with --delegate PATH"
            )
        delegates = [_load_delegate(runtime, delegate)] if delegate is not None else None
        try:
            interpreter = runtime.Interpreter(
                model_path=str(path), num_threads=threads, experimental_delegates=delegates
            )
            details = interpreter.get_input_details()
            if len(details) != 1:
                raise ModelLoadError(f"{path.name}: expected one input, got {len(details)}")
            signature = details[0].get("shape_signature", details[0]["shape"])
            shape = resolve_shape([int(d) for d in signature], input_shape, what=path.name)
            if any(int(d) < 0 for d in signature):
                interpreter.resize_tensor_input(details[0]["index"], list(shape))
            interpreter.allocate_tensors()
        except ModelLoadError:
            raise
        except Exception as exc:  # the interpreter raises ValueError/RuntimeError
            raise refused(self.name, path, exc) from exc
        device_name = f"delegate:{delegate.name}" if delegate is not None else "CPU"
        runner = _TfliteRunner(interpreter, device=device_name, threads=threads, runtime=dist)
        smoke_test(runner, backend=self.name, path=path)
        return runner


def _load_delegate(runtime: Any, path: Path) -> Any:
    """Load an external delegate library, or fail with one line naming it.

    LiteRT's ``Delegate.__del__`` raises on a delegate whose library failed to load, which
    Python reports as an "Exception ignored" block on stderr; that report is muted here
    because the failure is reported as this function's error instead.
    """
    if not path.is_file():
        raise BackendError(f"tflite delegate not found: {path}")
    hook = sys.unraisablehook
    sys.unraisablehook = lambda _: None
    try:
        try:
            return runtime.load_delegate(str(path))
        except Exception as exc:  # OSError, ValueError, RuntimeError
            message = first_line(exc)
    finally:
        sys.unraisablehook = hook
    raise BackendError(f"tflite cannot load delegate {path}: {message}")
