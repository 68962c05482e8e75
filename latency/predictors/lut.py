"""`lut`: the sum of the measured cells plus a constant overhead.

HURRICANE (Zhang et al., "Fast Hardware-Aware Neural Architecture Search", CVPRW 2020)
and FBNet (Wu et al., CVPR 2019) predict an arch's latency as the sum of its operators'
latencies from a per-device lookup table. The stem and head are cells of the table too.
Departure: one constant is added, the median of (measured - LUT sum) over end-to-end
measured archs when some are given (0 otherwise): the per-network cost a sum of
separately timed cells does not see (session overhead, the first layer's input copy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..features import lut_table, lut_var_table
from ..samples import Samples
from .base import Predictor, register_predictor

__all__ = ["LutPredictor"]


@register_predictor("lut")
class LutPredictor(Predictor):
    """LUT sum + fitted constant overhead; needs a LUT, end-to-end samples optional."""

    needs_lut = True
    min_samples = 0

    def __init__(self) -> None:
        super().__init__()
        self.overhead_ms = 0.0
        self.rel_error: float | None = None

    def _prepare(self) -> None:
        if self.lut is None:
            raise ValueError("lut: needs a LUT")
        self._sum = lut_table(self.space, self.lut).column("lut_ms")
        self._var = lut_var_table(self.space, self.lut)

    def _fit(self, samples: Samples | None) -> None:
        if samples is None:
            self.overhead_ms, self.rel_error = 0.0, None
            return
        idx = self.indices(samples.archs)
        gap = samples.latency_ms - self._sum.sum(idx)[:, 0]
        self.overhead_ms = float(np.median(gap))
        if len(samples) >= 2:
            # leave-one-out of a median is close to the in-sample error: no shrinkage to undo
            pred = self._predict(idx)
            self.rel_error = float(np.sqrt(np.mean(((samples.latency_ms - pred)
                                                    / samples.latency_ms) ** 2)))

    def _predict(self, idx: np.ndarray) -> np.ndarray:
        return self._sum.sum(idx)[:, 0] + self.overhead_ms

    def _std(self, idx: np.ndarray, pred: np.ndarray) -> np.ndarray:
        rel = self.rel_error if self.rel_error is not None else (self.noise_floor or 0.0)
        return np.sqrt(self._var.sum(idx)[:, 0] + (rel * pred) ** 2)

    def _state(self) -> dict[str, Any]:
        return {"overhead_ms": self.overhead_ms, "rel_error": self.rel_error}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.overhead_ms = float(state["overhead_ms"])
        rel = state.get("rel_error")
        self.rel_error = float(rel) if rel is not None else None

    def describe(self) -> str:
        err = (f"relative RMS error on its end-to-end archs {self.rel_error:.1%}"
               if self.rel_error is not None else
               "no end-to-end archs: its error (fusion, per-network overhead) is unknown; "
               "predict_std shows the cells' spread and the noise floor only")
        return (f"{self._header()}\n"
                f"latency = sum of the arch's cells' {self.lut.statistic if self.lut else ''} "
                f"(stem and head included) "
                f"+ overhead {self.overhead_ms:+.3f} ms (median gap to measured archs)\n{err}")
