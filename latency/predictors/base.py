"""The predictor interface, its registry, and the binding to a space and a device.

Every predictor maps archs of one space to milliseconds on one device/backend. It is
fitted from a :class:`~latency.lut.LookupTable`, end-to-end :class:`~latency.samples.Samples`,
or both (each kind says which it needs), and then holds everything it predicts from, so
``save``/``load`` round-trip a versioned JSON file (:class:`~latency.formats.PredictorFile`)
and predicting needs neither the measurements nor torch. ``predict`` satisfies
``search.protocols.LatencyModel``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from spaces import Arch, Space

from ..encoding import arch_indices
from ..formats import (
    PREDICTOR_SCHEMA_VERSION,
    DeviceRef,
    PredictorFile,
    SpaceRef,
    read_json,
    robust_cv,
    write_json,
)
from ..lut import LookupTable
from ..samples import Samples

__all__ = [
    "Predictor",
    "get_predictor",
    "list_predictors",
    "load_predictor",
    "register_predictor",
]

Archs = Sequence[Arch | str] | np.ndarray
P = TypeVar("P", bound=type["Predictor"])
_PREDICTORS: dict[str, type[Predictor]] = {}


class NotFittedError(ValueError):
    """The predictor was used before ``fit`` or ``load``."""


class Predictor(ABC):
    """Latency in ms for archs of one space on one device.

    Subclasses set ``kind``, ``needs_lut`` (True: required, False: not used, None:
    optional) and ``min_samples`` (end-to-end samples needed; 0: none), and implement
    ``_fit``, ``_prepare``, ``_predict``, ``_std``, ``_state``/``_set_state``, ``describe``.
    """

    kind: ClassVar[str]
    needs_lut: ClassVar[bool | None]
    min_samples: ClassVar[int]

    def __init__(self) -> None:
        self.space_ref: SpaceRef | None = None
        self.device: DeviceRef | None = None
        self.lut: LookupTable | None = None
        self.noise_floor: float | None = None
        self.e2e_samples = 0
        self.floor_ms = 0.0
        self._space: Space | None = None

    @property
    def space(self) -> Space:
        if self._space is None:
            raise NotFittedError(f"{self.kind} predictor: call fit() or load() first")
        return self._space

    # --- fitting ----------------------------------------------------------------------

    def fit(self, *, lut: LookupTable | None = None, samples: Samples | None = None) -> Predictor:
        """Fit from a LUT and/or end-to-end samples (as the kind needs); returns self.

        Raises:
            ValueError: A required input is missing, too few samples, or the LUT and the
                samples are of different spaces or devices (the field named).
            LookupMissError: The LUT lacks a cell of the space.
        """
        if self.needs_lut and lut is None:
            raise ValueError(f"{self.kind}: needs a LUT (--measurements)")
        if self.needs_lut is False:
            lut = None
        n = 0 if samples is None else len(samples)
        if n < self.min_samples:
            raise ValueError(f"{self.kind}: needs at least {self.min_samples} end-to-end "
                             f"measured archs (--e2e), got {n}")
        if lut is not None:
            self.space_ref, self.device = lut.space, lut.device
            if samples is not None:
                lut.space.check_same(samples.space, "e2e samples")
                lut.device.check_same(samples.device, "e2e samples")
        elif samples is not None:
            self.space_ref, self.device = samples.space, samples.device
        else:
            raise ValueError(f"{self.kind}: nothing to fit on (give a LUT or e2e samples)")
        self.lut = lut
        self._space = self.space_ref.build()
        floors = [lut.noise_floor() if lut is not None else None,
                  robust_cv(samples.reference) if samples is not None else None]
        self.noise_floor = next((f for f in floors if f is not None), None)
        self.e2e_samples = n
        self._prepare()
        self._fit(samples if n else None)
        # A regression can extrapolate below zero for archs far from what it was fitted
        # on (e.g. every slot at its cheapest op); no prediction goes under half the
        # fastest arch measured.
        self.floor_ms = 0.5 * float(samples.latency_ms.min()) if n else 0.0
        return self

    def check(self, samples: Samples, what: str = "e2e samples") -> None:
        """Raise ValueError if ``samples`` are of another space or device than this predictor."""
        if self.space_ref is None:
            raise NotFittedError(f"{self.kind} predictor: call fit() or load() first")
        self.space_ref.check_same(samples.space, what)
        if self.device is not None:
            self.device.check_same(samples.device, what)

    # --- predicting -------------------------------------------------------------------

    def indices(self, archs: Archs) -> np.ndarray:
        return arch_indices(self.space, archs)

    def predict(self, archs: Archs) -> np.ndarray:
        """Predicted latency (ms, float64), one per arch; archs, arch strings or indices.

        Never below `floor_ms` (half the fastest end-to-end measured arch, 0 without any).
        """
        return np.maximum(self._predict(self.indices(archs)), self.floor_ms)

    def predict_std(self, archs: Archs) -> np.ndarray:
        """Per-arch uncertainty (ms): the measured spread of the LUT cells summed, combined
        with the model's cross-validated relative error (or, with no end-to-end data to
        estimate it from, the run's noise floor)."""
        idx = self.indices(archs)
        return self._std(idx, self._predict(idx))

    # --- files ------------------------------------------------------------------------

    def to_file(self) -> PredictorFile:
        if self.space_ref is None:
            raise NotFittedError(f"{self.kind} predictor: nothing to save before fit()")
        return PredictorFile(kind=self.kind, space=self.space_ref, device=self.device,
                             lut=self.lut.to_file() if self.lut is not None else None,
                             noise_floor=self.noise_floor, e2e_samples=self.e2e_samples,
                             floor_ms=self.floor_ms, state=self._state())

    def save(self, path: str | Path) -> None:
        """Write the predictor as versioned JSON (``PredictorFile``), atomically."""
        write_json(path, self.to_file())

    @classmethod
    def from_file(cls, doc: PredictorFile) -> Predictor:
        """Rebuild a predictor of ``doc.kind`` (any registered kind) from its file."""
        pred = _lookup(doc.kind)()
        pred.space_ref, pred.device = doc.space, doc.device
        pred.lut = LookupTable.from_file(doc.lut) if doc.lut is not None else None
        if pred.needs_lut and pred.lut is None:
            raise ValueError(f"predictor file: kind {doc.kind!r} needs its lut, which is missing")
        pred.noise_floor, pred.e2e_samples = doc.noise_floor, doc.e2e_samples
        pred.floor_ms = doc.floor_ms
        pred._space = doc.space.build()
        pred._prepare()
        pred._set_state(doc.state)
        return pred

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        return load_predictor(path)

    # --- for subclasses ---------------------------------------------------------------

    @abstractmethod
    def _prepare(self) -> None:
        """Build the per-slot tables from ``self.space`` and ``self.lut``."""

    @abstractmethod
    def _fit(self, samples: Samples | None) -> None:
        """Fit the model's numbers (tables are ready)."""

    @abstractmethod
    def _predict(self, idx: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _std(self, idx: np.ndarray, pred: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _state(self) -> dict[str, Any]: ...

    @abstractmethod
    def _set_state(self, state: dict[str, Any]) -> None: ...

    @abstractmethod
    def describe(self) -> str:
        """Several lines: what the predictor sums or regresses, its numbers, its data."""

    def _header(self) -> str:
        device = self.device.label() if self.device is not None else "an unknown device"
        space = self.space_ref.name if self.space_ref is not None else "?"
        params = self.space_ref.params if self.space_ref is not None else {}
        floor = f"{self.noise_floor:.1%}" if self.noise_floor is not None else "unknown"
        return (f"{self.kind} predictor for {space} {params} on {device}\n"
                f"fitted on {len(self.lut) if self.lut is not None else 0} LUT cells and "
                f"{self.e2e_samples} end-to-end archs; noise floor {floor}")


def register_predictor(name: str) -> Callable[[P], P]:
    """Class decorator: make a `Predictor` subclass available as ``get_predictor(name)``."""

    def wrap(cls: P) -> P:
        if name in _PREDICTORS:
            raise ValueError(f"predictor {name!r} is registered twice")
        cls.kind = name
        _PREDICTORS[name] = cls
        return cls

    return wrap


def list_predictors() -> list[str]:
    """Names of the registered predictor kinds, sorted."""
    return sorted(_PREDICTORS)


def _lookup(name: str) -> type[Predictor]:
    try:
        return _PREDICTORS[name]
    except KeyError:
        raise ValueError(f"unknown predictor kind {name!r} "
                         f"(known: {', '.join(list_predictors())})") from None


def get_predictor(name: str, **options: Any) -> Predictor:
    """A new, unfitted predictor of kind ``name`` (options as its constructor takes).

    Example:
        >>> get_predictor("fox").kind
        'fox'
    """
    return _lookup(name)(**options)


def load_predictor(path: str | Path) -> Predictor:
    """Read a ``PredictorFile`` and rebuild the predictor it holds.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a predictor file, another schema_version, an unknown kind.
    """
    doc = read_json(path, PredictorFile, expected=PREDICTOR_SCHEMA_VERSION,
                    what="predictor file")
    return Predictor.from_file(doc)
