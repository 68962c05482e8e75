"""OpenVINO backend: CPU here, and the GPU/NPU plugins where ``Core().available_devices`` has them.

Models are compiled for latency with one stream (``PERFORMANCE_HINT=LATENCY``,
``NUM_STREAMS=1``), ``INFERENCE_NUM_THREADS=threads`` on the CPU, and an explicit
``INFERENCE_PRECISION_HINT`` from the requested precision: on CPUs with bf16 or fp16
units OpenVINO otherwise runs fp32 models in the lower precision, which would make a LUT
measure another precision than the one it says. int8 maps to ``f32``: a quantised model
keeps its int8 layers and the rest runs in fp32. The hint is read back from the compiled
model: a device that cannot run the precision (bf16 on a CPU without bf16 units, where
OpenVINO quietly keeps f32) is an error rather than a mislabelled measurement. Properties
a device does not support (threads on a GPU) are left out; ``describe`` reads back what
the compiled model uses.

Reads OpenVINO IR (``.xml`` with its ``.bin`` beside it) and ``.onnx`` files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from profilers.base import (
    HostTimedRunner,
    check_settings,
    probe_import,
    refused,
    register_backend,
    resolve_shape,
    smoke_test,
)
from profilers.errors import BackendError, ModelLoadError

__all__ = ["PRECISION_HINTS", "OpenVinoBackend"]

# Requested precision -> INFERENCE_PRECISION_HINT.
PRECISION_HINTS = {"fp32": "f32", "fp16": "f16", "bf16": "bf16", "int8": "f32"}

_READ_BACK = (
    "INFERENCE_PRECISION_HINT",
    "INFERENCE_NUM_THREADS",
    "NUM_STREAMS",
    "PERFORMANCE_HINT",
)


class _OvRunner(HostTimedRunner):
    """One compiled model and its infer request; the input tensor shares numpy's memory."""

    def __init__(self, ov: Any, compiled: Any, *, device: str, shape: tuple[int, ...]) -> None:
        self._ov = ov
        self.compiled = compiled
        self._request = compiled.create_infer_request()
        self.device = device
        self.input_shape = shape
        self.input_dtype = np.dtype(compiled.input(0).get_element_type().to_dtype())

    def prepare(self, x: np.ndarray) -> object:
        x = np.ascontiguousarray(x)
        self._request.set_input_tensor(self._ov.Tensor(x, shared_memory=True))
        return x  # keeps the shared buffer alive

    def run(self, prepared: object) -> None:
        self._request.infer()

    def describe(self) -> dict[str, str]:
        supported = self.compiled.get_property("SUPPORTED_PROPERTIES")
        described = {"device": self.device}
        for name in _READ_BACK:
            if name in supported:
                value = self.compiled.get_property(name)
                described[name] = value.to_string() if hasattr(value, "to_string") else str(value)
        return described


@register_backend
class OpenVinoBackend:
    """OpenVINO runtime (``pip install openvino``)."""

    name = "openvino"
    formats = ("openvino", "onnx")
    precisions = ("fp32", "fp16", "bf16", "int8")
    install = "pip install openvino (or hwnas[openvino])"

    def available(self) -> tuple[bool, str]:
        return probe_import("openvino", self.install)

    def version(self) -> str:
        import openvino

        return str(openvino.get_version())

    def load(
        self,
        path: Path,
        *,
        threads: int,
        precision: str,
        device: str | None = None,
        delegate: Path | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> _OvRunner:
        import openvino as ov

        check_settings(self, threads=threads, precision=precision, delegate=delegate)
        core = ov.Core()
        resolved = self._device(core.available_devices, device)
        try:
            model = core.read_model(str(path))
        except Exception as exc:  # OpenVINO raises RuntimeError and others
            raise refused(self.name, path, exc) from exc
        if len(model.inputs) != 1:
            raise ModelLoadError(f"{path.name}: expected one input, got {len(model.inputs)}")
        partial = model.inputs[0].get_partial_shape()
        file_shape = [d.get_length() if d.is_static else None for d in partial]
        shape = resolve_shape(file_shape, input_shape, what=path.name)
        config: dict[str, Any] = {
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision],
        }
        supported = core.get_property(resolved, "SUPPORTED_PROPERTIES")
        config = {key: value for key, value in config.items() if key in supported}
        try:
            if not partial.is_static:
                model.reshape(list(shape))
            compiled = core.compile_model(model, resolved, config)
        except Exception as exc:
            raise refused(self.name, path, exc) from exc
        hint = config.get("INFERENCE_PRECISION_HINT")
        if hint is not None:
            used = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
            if used != hint:
                raise BackendError(
                    f"openvino on {resolved} runs {used} when asked for {hint} (precision "
                    f"{precision} is not supported there); measure another precision"
                )
        runner = _OvRunner(ov, compiled, device=resolved, shape=shape)
        smoke_test(runner, backend=self.name, path=path)
        return runner

    @staticmethod
    def _device(available: Sequence[str], device: str | None) -> str:
        """The device to compile for: ``CPU`` by default; ``GPU`` means the first GPU."""
        wanted = (device or "CPU").upper()
        for name in available:
            if name.upper() == wanted or name.upper().split(".")[0] == wanted:
                return str(name)
        raise BackendError(
            f"openvino has no device {device!r} here (available: {', '.join(available)})"
        )
