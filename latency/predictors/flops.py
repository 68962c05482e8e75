"""`flops`: latency as a linear function of FLOPs, the baseline every predictor must beat.

The naive proxy NAS papers compare against (ZiCo, Li et al. ICLR 2023, reports FLOPs
beside #params as the baseline proxies; nn-Meter reports FLOPs-based predictors far below
kernel-level ones). FLOPs are analytic per cell (:func:`latency.features.cell_flops`), so
this needs no LUT: ``latency = a x MFLOPs + b``, fitted by (nearly unpenalised)
least squares weighted by ``1 / latency^2``, with its leave-one-out relative error as the
uncertainty.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..features import flops_table
from ..ridge import fit_ridge
from ..samples import Samples
from .base import Predictor, register_predictor
from .fox import relative_rms

__all__ = ["FlopsPredictor"]


@register_predictor("flops")
class FlopsPredictor(Predictor):
    """``a x MFLOPs + b``; needs at least 3 end-to-end archs, no LUT."""

    needs_lut = False
    min_samples = 3

    def __init__(self) -> None:
        super().__init__()
        self.slope = 0.0
        self.intercept = 0.0
        self.rel_error: float | None = None

    def _prepare(self) -> None:
        self._flops = flops_table(self.space).column("mflops")

    def _fit(self, samples: Samples | None) -> None:
        if samples is None:
            raise ValueError("flops: needs end-to-end samples")
        x = self._flops.sum(self.indices(samples.archs))
        y = samples.latency_ms
        fit = fit_ridge(x, y, weights=1.0 / y**2, alphas=(1e-9,))
        self.slope, self.intercept = float(fit.coef[0]), fit.intercept
        self.rel_error = relative_rms(fit.loo_residuals, y)

    def _predict(self, idx: np.ndarray) -> np.ndarray:
        return self.slope * self._flops.sum(idx)[:, 0] + self.intercept

    def _std(self, idx: np.ndarray, pred: np.ndarray) -> np.ndarray:
        return np.abs(pred) * (self.rel_error or 0.0)

    def _state(self) -> dict[str, Any]:
        return {"slope_ms_per_mflop": self.slope, "intercept": self.intercept,
                "rel_error": self.rel_error}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.slope = float(state["slope_ms_per_mflop"])
        self.intercept = float(state["intercept"])
        self.rel_error = state.get("rel_error")

    def describe(self) -> str:
        err = f"{self.rel_error:.1%}" if self.rel_error is not None else "unknown"
        return (f"{self._header()}\nlatency = {self.slope:.6f} ms/MFLOP x MFLOPs "
                f"{self.intercept:+.4f} ms (FLOPs analytic, multiply-add = 2)\n"
                f"leave-one-out relative RMS error {err}")
