"""ONNX Runtime backend: the CPU execution provider, and CUDA where onnxruntime-gpu has it.

Sessions run with ``intra_op_num_threads = threads``, one inter-op thread and sequential
execution, so a measurement uses exactly the cores it says (ONNX Runtime's default is
every core). Inputs and outputs are bound once with IO binding, so ``run`` times the
inference and not the copies; on CUDA the input lives on the GPU and ``run`` waits for
the outputs. Precision is the file's own: ONNX Runtime does not convert a model.
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
from profilers.errors import BackendError, BackendUnavailable, ModelLoadError

__all__ = ["OnnxRuntimeBackend"]

_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


class _OrtRunner(HostTimedRunner):
    """One InferenceSession with its input and outputs bound on the session's device."""

    def __init__(
        self, ort: Any, session: Any, *, device_id: int | None, shape: tuple[int, ...]
    ) -> None:
        self._ort = ort
        self._session = session
        self._device_type = "cpu" if device_id is None else "cuda"
        self._device_id = device_id or 0
        self.device = "CPU" if device_id is None else f"cuda:{device_id}"
        inp = session.get_inputs()[0]
        self._input_name = inp.name
        self.input_shape = shape
        self.input_dtype = np.dtype(_DTYPES[inp.type])

    def prepare(self, x: np.ndarray) -> object:
        binding = self._session.io_binding()
        if self._device_type == "cpu":
            binding.bind_cpu_input(self._input_name, x)
        else:
            value = self._ort.OrtValue.ortvalue_from_numpy(x, self._device_type, self._device_id)
            binding.bind_ortvalue_input(self._input_name, value)
        for out in self._session.get_outputs():
            binding.bind_output(out.name, self._device_type, self._device_id)
        return binding

    def run(self, prepared: Any) -> None:
        self._session.run_with_iobinding(prepared)
        if self._device_type != "cpu":
            prepared.synchronize_outputs()

    def describe(self) -> dict[str, str]:
        options = self._session.get_session_options()
        return {
            "device": self.device,
            "providers": ",".join(self._session.get_providers()),
            "threads": str(options.intra_op_num_threads),
            "inter_op_threads": str(options.inter_op_num_threads),
            "execution_mode": str(options.execution_mode),
        }


@register_backend
class OnnxRuntimeBackend:
    """ONNX Runtime (``pip install onnxruntime``; ``onnxruntime-gpu`` for CUDA)."""

    name = "onnxruntime"
    formats = ("onnx",)
    precisions = ("fp32", "fp16", "int8")
    install = "pip install onnxruntime (or hwnas[onnxruntime]; onnxruntime-gpu for CUDA)"

    def available(self) -> tuple[bool, str]:
        return probe_import("onnxruntime", self.install)

    def version(self) -> str:
        import onnxruntime

        return str(onnxruntime.__version__)

    def load(
        self,
        path: Path,
        *,
        threads: int,
        precision: str,
        device: str | None = None,
        delegate: Path | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> _OrtRunner:
        import onnxruntime as ort

        check_settings(self, threads=threads, precision=precision, delegate=delegate)
        device_id, providers = self._providers(ort, device)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: warnings would break one-line output
        try:
            session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # ORT raises its own exception types
            raise refused(self.name, path, exc) from exc
        inputs = session.get_inputs()
        if len(inputs) != 1 or inputs[0].type not in _DTYPES:
            raise ModelLoadError(
                f"{path.name}: expected one input of a numeric tensor type, got "
                f"{[(i.name, i.type) for i in inputs]}"
            )
        shape = resolve_shape(inputs[0].shape, input_shape, what=path.name)
        runner = _OrtRunner(ort, session, device_id=device_id, shape=shape)
        smoke_test(runner, backend=self.name, path=path)
        return runner

    @staticmethod
    def _providers(ort: Any, device: str | None) -> tuple[int | None, list[Any]]:
        """The CUDA device index (None for the CPU) and the provider list for ``device``."""
        wanted = (device or "cpu").lower()
        if wanted == "cpu":
            return None, ["CPUExecutionProvider"]
        kind, _, index = wanted.partition(":")
        if kind not in ("cuda", "gpu") or not (index == "" or index.isdigit()):
            raise BackendError(f"onnxruntime: unknown device {device!r} (use cpu or cuda[:N])")
        available = ort.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            raise BackendUnavailable(
                f"onnxruntime has no CUDA execution provider here (it has: "
                f"{', '.join(available)}); install onnxruntime-gpu"
            )
        device_id = int(index or 0)
        cuda = ("CUDAExecutionProvider", {"device_id": device_id})
        return device_id, [cuda, "CPUExecutionProvider"]
