"""torch backend: a ``torch.export`` program (``.pt2``) run eagerly on the CPU or on CUDA.

ONNX, TFLite and OpenVINO files cannot be run by torch, so torch kits hold programs saved
with ``torch.export.save``; ``torch.export.load(path).module()`` gives back an eager module.

- CPU: ``torch.set_num_threads(threads)`` (process-wide: the last runner loaded sets it,
  so load runners of one thread count per process) and timing with ``perf_counter_ns``.
- CUDA: the input and weights live on the GPU; ``time_ms`` records CUDA events around one
  forward and waits for the end event, so the time is the GPU's, kernel launches
  included, and ``run`` synchronises the device before returning.

Precision is applied by casting weights and input: ``fp32``, ``bf16`` (CPU and CUDA) and
``fp16`` (CUDA only: most CPU kernels have no fp16 path).

This module is imported by the registry on every machine; torch itself is imported only
inside the backend's methods, never by the runner of another backend.
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

__all__ = ["TorchBackend"]


class _TorchRunner(HostTimedRunner):
    """An eager module on one device, in one dtype, run under ``torch.inference_mode``."""

    def __init__(
        self, torch: Any, module: Any, *, device: str, dtype: Any, shape: tuple[int, ...]
    ) -> None:
        self._torch = torch
        self._module = module
        self._dtype = dtype
        self._cuda = device.startswith("cuda")
        self.device = device if self._cuda else "CPU"
        self._torch_device = torch.device(device)
        self.input_shape = shape
        self.input_dtype = np.dtype(np.float32)
        if self._cuda:
            self._stream = torch.cuda.current_stream(self._torch_device)
            self._start = torch.cuda.Event(enable_timing=True)
            self._end = torch.cuda.Event(enable_timing=True)

    def prepare(self, x: np.ndarray) -> object:
        tensor = self._torch.from_numpy(np.ascontiguousarray(x))
        return tensor.to(device=self._torch_device, dtype=self._dtype)

    def _forward(self, tensor: Any) -> None:
        with self._torch.inference_mode():
            self._module(tensor)

    def run(self, prepared: Any) -> None:
        self._forward(prepared)
        if self._cuda:
            self._torch.cuda.synchronize(self._torch_device)

    def time_ms(self, prepared: Any) -> float:
        if not self._cuda:
            return super().time_ms(prepared)
        self._start.record(self._stream)
        self._forward(prepared)
        self._end.record(self._stream)
        self._end.synchronize()
        return float(self._start.elapsed_time(self._end))

    def describe(self) -> dict[str, str]:
        described = {
            "device": self.device,
            "dtype": str(self._dtype).removeprefix("torch."),
            "threads": str(self._torch.get_num_threads()),
        }
        if self._cuda:
            described["gpu"] = self._torch.cuda.get_device_name(self._torch_device)
        return described


@register_backend
class TorchBackend:
    """PyTorch eager (``pip install torch``), CPU and CUDA."""

    name = "torch"
    formats = ("pt2",)
    precisions = ("fp32", "fp16", "bf16")
    install = "pip install torch (or hwnas[torch])"

    def available(self) -> tuple[bool, str]:
        return probe_import("torch", self.install)

    def version(self) -> str:
        import torch

        return str(torch.__version__)

    def load(
        self,
        path: Path,
        *,
        threads: int,
        precision: str,
        device: str | None = None,
        delegate: Path | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> _TorchRunner:
        import torch

        check_settings(self, threads=threads, precision=precision, delegate=delegate)
        resolved = self._device(torch, device)
        if precision == "fp16" and resolved == "cpu":
            raise BackendError("torch runs fp16 on CUDA only; use fp32 or bf16 on the CPU")
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        torch.set_num_threads(threads)
        try:
            program = torch.export.load(str(path))
            module = program.module().to(device=resolved, dtype=dtype)
        except Exception as exc:  # torch raises many types for a bad file
            raise refused(self.name, path, exc) from exc
        user_inputs = program.graph_signature.user_inputs
        if len(user_inputs) != 1:
            raise ModelLoadError(f"{path.name}: expected one input, got {len(user_inputs)}")
        shape = resolve_shape(
            _placeholder_shape(program, user_inputs[0]), input_shape, what=path.name
        )
        runner = _TorchRunner(torch, module, device=resolved, dtype=dtype, shape=shape)
        smoke_test(runner, backend=self.name, path=path)
        return runner

    @staticmethod
    def _device(torch: Any, device: str | None) -> str:
        """``cpu`` or ``cuda:N``, checked to exist."""
        wanted = (device or "cpu").lower()
        if wanted == "cpu":
            return "cpu"
        kind, _, index = wanted.partition(":")
        if kind != "cuda" or not (index == "" or index.isdigit()):
            raise BackendError(f"torch: unknown device {device!r} (use cpu or cuda[:N])")
        if not torch.cuda.is_available():
            raise BackendUnavailable(
                f"torch {torch.__version__} sees no CUDA device here (built for CUDA "
                f"{torch.version.cuda}); a CUDA build of torch and a GPU are needed"
            )
        device_id = int(index or 0)
        if device_id >= torch.cuda.device_count():
            raise BackendError(
                f"torch: no device cuda:{device_id} ({torch.cuda.device_count()} CUDA devices)"
            )
        return f"cuda:{device_id}"


def _placeholder_shape(program: Any, name: str) -> list[int | None]:
    """The traced shape of input ``name`` (None for a symbolic, i.e. dynamic, dimension)."""
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name == name and "val" in node.meta:
            return [d if isinstance(d, int) else None for d in node.meta["val"].shape]
    raise ModelLoadError(f"input {name!r} has no traced shape in the exported program")
