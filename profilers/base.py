"""The backend Protocol, the Runner it returns, and the registry of backends.

One runtime = one module (``profilers/onnxruntime.py``, ``openvino.py``, ``tflite.py``,
``torch_backend.py``) holding a class decorated with :func:`register_backend`. A backend
module imports its runtime only inside its functions, so looking a backend up never
imports another runtime: the board-side runner imports the one runtime it measures with.
A missing runtime is reported by :func:`get_backend` as :class:`BackendUnavailable`
naming what to ``pip install`` (nn-Meter's backend folders, without a ``try_import`` that
quietly returns None).

A :class:`Runner` is one loaded model with its settings fixed (threads, precision,
device): ``prepare`` binds an input once, then ``run`` does one synchronous inference and
``time_ms`` times one. :class:`HostTimedRunner` times with ``time.perf_counter_ns``;
device backends (CUDA) override ``time_ms`` with their own timer.
"""

from __future__ import annotations

import importlib
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from profilers.errors import BackendError, BackendUnavailable, ModelLoadError, first_line

__all__ = [
    "BUILTIN_BACKENDS",
    "Backend",
    "BackendInfo",
    "HostTimedRunner",
    "Runner",
    "check_settings",
    "get_backend",
    "list_backends",
    "probe_import",
    "refused",
    "register_backend",
    "resolve_shape",
    "smoke_test",
]

# Modules whose import registers the built-in backends (none imports its runtime then).
BUILTIN_BACKENDS = (
    "profilers.onnxruntime",
    "profilers.openvino",
    "profilers.tflite",
    "profilers.torch_backend",
)


class Runner(Protocol):
    """One model loaded on a runtime with fixed threads, precision and device.

    Attributes:
        input_shape: The shape ``example_input`` returns (the file's own layout).
        device: The device it runs on, as recorded in measurements (``CPU``, ``cuda:0``).
    """

    input_shape: tuple[int, ...]
    device: str

    def example_input(self, seed: int = 0) -> np.ndarray:
        """A random input of the model's shape and dtype (quantised for int8 inputs)."""
        ...

    def prepare(self, x: np.ndarray) -> object:
        """Bind ``x`` to the runtime (on the device) once; returns what ``run`` takes."""
        ...

    def run(self, prepared: object) -> None:
        """One inference on a prepared input, returning once it has finished."""
        ...

    def time_ms(self, prepared: object) -> float:
        """One inference on a prepared input, timed; milliseconds."""
        ...

    def describe(self) -> dict[str, str]:
        """Effective settings, read back from the runtime where it can say them."""
        ...


class HostTimedRunner(ABC):
    """Base for runners whose ``run`` is synchronous on the host: times it with perf_counter_ns.

    Subclasses set ``input_shape``, ``input_dtype`` and ``device`` and implement
    ``prepare``, ``run`` and ``describe``.
    """

    input_shape: tuple[int, ...]
    input_dtype: np.dtype
    device: str

    def example_input(self, seed: int = 0) -> np.ndarray:
        """Standard-normal values of the input's shape, cast to its dtype."""
        rng = np.random.default_rng(seed)
        return rng.standard_normal(self.input_shape).astype(self.input_dtype)

    @abstractmethod
    def prepare(self, x: np.ndarray) -> object:
        """Bind ``x`` to the runtime once; returns what ``run`` takes."""

    @abstractmethod
    def run(self, prepared: object) -> None:
        """One synchronous inference."""

    @abstractmethod
    def describe(self) -> dict[str, str]:
        """Effective settings, read back from the runtime where possible."""

    def time_ms(self, prepared: object) -> float:
        """Wall time of one ``run`` in milliseconds (``time.perf_counter_ns``)."""
        start = time.perf_counter_ns()
        self.run(prepared)
        return (time.perf_counter_ns() - start) / 1e6


class Backend(Protocol):
    """A runtime that loads model files into :class:`Runner` objects.

    Attributes:
        name: Registry name (``onnxruntime``, ``openvino``, ``tflite``, ``torch``).
        formats: Kit formats it reads (``onnx``, ``openvino``, ``tflite``, ``pt2``).
        precisions: Precisions it can run; where the runtime cannot convert, the file's own
            precision is meant and recorded as given.
        install: What to install when the runtime is missing.
    """

    name: str
    formats: tuple[str, ...]
    precisions: tuple[str, ...]
    install: str

    def available(self) -> tuple[bool, str]:
        """Whether the runtime imports here, and why not when it does not."""
        ...

    def version(self) -> str:
        """The runtime's version (call only when available)."""
        ...

    def load(
        self,
        path: Path,
        *,
        threads: int,
        precision: str,
        device: str | None = None,
        delegate: Path | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> Runner:
        """Load one model file with fixed settings.

        Args:
            path: The model file.
            threads: Intra-op threads (the runtime's default is usually all cores).
            precision: One of ``precisions``.
            device: Device name in the runtime's terms; None is the CPU.
            delegate: A TFLite external delegate library; other backends refuse one.
            input_shape: Fills the file's dynamic input dimensions, if any.

        Raises:
            BackendError: A setting it cannot honour (device, precision, delegate).
            ModelLoadError: The runtime refused the file or failed its first inference.
        """
        ...


@dataclass(frozen=True)
class BackendInfo:
    """What :func:`list_backends` says about one backend."""

    name: str
    available: bool
    reason: str
    version: str
    formats: tuple[str, ...]


_REGISTRY: dict[str, Backend] = {}

BackendT = TypeVar("BackendT")


def register_backend(cls: type[BackendT]) -> type[BackendT]:
    """Class decorator: register one instance of ``cls`` under its ``name``.

    Raises:
        ValueError: Another backend already has that name.
    """
    backend = cls()
    name = backend.name  # type: ignore[attr-defined]
    if name in _REGISTRY:
        raise ValueError(f"backend {name!r} is registered twice")
    _REGISTRY[name] = backend  # type: ignore[assignment]
    return cls


def _registry() -> dict[str, Backend]:
    for module in BUILTIN_BACKENDS:
        importlib.import_module(module)
    return _REGISTRY


def get_backend(name: str) -> Backend:
    """The backend registered as ``name``, checked to be usable here.

    Raises:
        BackendError: No backend has that name (the message lists the known ones).
        BackendUnavailable: Its runtime does not import here (the message says what to
            install).
    """
    registry = _registry()
    if name not in registry:
        raise BackendError(
            f"unknown backend {name!r}; known backends: {', '.join(sorted(registry))}"
        )
    backend = registry[name]
    ok, reason = backend.available()
    if not ok:
        raise BackendUnavailable(f"backend {name!r} is not available: {reason}")
    return backend


def list_backends() -> list[BackendInfo]:
    """Every registered backend, sorted by name, with whether it runs here and why not.

    This imports every installed runtime (torch included), unlike :func:`get_backend`.
    """
    infos = []
    for name, backend in sorted(_registry().items()):
        ok, reason = backend.available()
        version = backend.version() if ok else ""
        infos.append(BackendInfo(name, ok, reason, version, tuple(backend.formats)))
    return infos


def probe_import(module: str, install: str) -> tuple[bool, str]:
    """Try to import ``module``: ``(True, "")`` or ``(False, reason + what to install)``.

    Any exception counts as unavailable, not only ImportError: a runtime built against
    another numpy fails with AttributeError or RuntimeError at import.
    """
    try:
        importlib.import_module(module)
    except Exception as exc:  # any failure to import means "not usable here"
        return False, f"cannot import {module} ({first_line(exc)}); install: {install}"
    return True, ""


def check_settings(
    backend: Backend,
    *,
    threads: int,
    precision: str,
    delegate: Path | None,
    delegates: bool = False,
) -> None:
    """Check the settings every backend validates the same way.

    Raises:
        BackendError: ``threads < 1``, a precision the backend cannot run, or a delegate
            given to a backend that takes none.
    """
    if threads < 1:
        raise BackendError(f"threads must be >= 1, got {threads}")
    if precision not in backend.precisions:
        raise BackendError(
            f"{backend.name} cannot run precision {precision!r} "
            f"(it runs: {', '.join(backend.precisions)})"
        )
    if delegate is not None and not delegates:
        raise BackendError(f"{backend.name} takes no delegate (--delegate is for tflite)")


def resolve_shape(
    file_shape: Sequence[int | None], given: Sequence[int] | None, *, what: str
) -> tuple[int, ...]:
    """The input shape to run: the file's static dimensions, ``given`` for dynamic ones.

    Args:
        file_shape: The model's input shape; None (or a non-positive int) is dynamic.
        given: The kit's ``input_shape``, or None.
        what: The model, for error messages.

    Raises:
        ModelLoadError: A dynamic dimension and no ``given`` shape of the same rank.
    """
    dims = [d if isinstance(d, int) and d > 0 else None for d in file_shape]
    if all(d is not None for d in dims):
        return tuple(int(d) for d in dims)  # type: ignore[arg-type]
    if given is None or len(given) != len(dims):
        raise ModelLoadError(
            f"{what}: input shape {list(file_shape)} is dynamic and no input shape of the "
            f"same rank was given ({given})"
        )
    return tuple(int(g if d is None else d) for d, g in zip(dims, given, strict=True))


def smoke_test(runner: Runner, *, backend: str, path: Path) -> None:
    """Run ``runner`` once, so a model that loads but cannot run fails at load time.

    Raises:
        ModelLoadError: The first inference failed.
    """
    try:
        runner.run(runner.prepare(runner.example_input()))
    except Exception as exc:  # any runtime failure means the file is refused
        raise ModelLoadError(f"{backend} failed to run {path.name}: {first_line(exc)}") from exc


def refused(backend: str, path: Path, exc: BaseException) -> ModelLoadError:
    """The error for a model file the runtime would not load."""
    return ModelLoadError(f"{backend} refused {path.name}: {first_line(exc)}")
