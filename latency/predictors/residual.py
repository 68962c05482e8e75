"""`residual`: gradient-boosted trees on arch features, correcting the fox regression.

Where a backend fuses layers or changes layouts across cell boundaries, an arch's latency
is not the sum of its cells' (nn-Meter, Zhang et al., MobiSys 2021, detects such kernels
by profiling operator pairs; here a learner sees them as structure). The model is the
fox regression (:mod:`latency.predictors.fox`: LUT sum + linear corrections, or FLOPs +
counts with no LUT) times ``1 + r(x)``, where ``r`` is scikit-learn gradient boosting on
the same additive features, fitted to the regression's relative leave-one-out residuals.
Fitting ``r`` on out-of-sample residuals keeps the trees from learning what the linear
part already memorised.

The trees are stored as plain arrays (:mod:`latency.trees`), never pickled. The model's
uncertainty is the relative error of the whole two-step fit under 5-fold cross-validation.
With a LUT, the product is kept within the fitted archs' corrections of the LUT sum, as
the fox prediction is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..samples import Samples
from ..trees import fit_boosting, predict_boosting
from .base import register_predictor
from .fox import FoxPredictor, relative_rms

__all__ = ["ResidualPredictor"]

FOLDS = 5


@register_predictor("residual")
class ResidualPredictor(FoxPredictor):
    """fox x (1 + boosted-trees correction); needs at least 10 end-to-end archs."""

    min_samples = 10

    def __init__(self, *, seed: int = 0) -> None:
        super().__init__()
        self.seed = seed
        self.trees: dict[str, Any] = {}

    def _fit_both(self, x: np.ndarray, y: np.ndarray) -> None:
        loo = self.fit_features(x, y)
        self.trees = fit_boosting(x, y / loo - 1.0, seed=self.seed)

    def _fit(self, samples: Samples | None) -> None:
        if samples is None:
            raise ValueError("residual: needs end-to-end samples")
        x = self._features.sum(self.indices(samples.archs))
        y = samples.latency_ms
        folds = np.random.default_rng(self.seed).permutation(len(y)) % FOLDS
        out_of_fold = np.empty_like(y)
        for k in range(FOLDS):
            held = folds == k
            self._fit_both(x[~held], y[~held])
            out_of_fold[held] = self._combine(x[held])
        self._fit_both(x, y)
        self.rel_error = relative_rms(y - out_of_fold, y)

    def _combine(self, x: np.ndarray) -> np.ndarray:
        linear = x @ (self.coef + self._anchor()) + self.intercept
        # The trees' factor is bounded as the linear part is (fox's docstring: why).
        return self.bounded(linear * (1.0 + predict_boosting(self.trees, x)),
                            x @ self._anchor())

    def _predict(self, idx: np.ndarray) -> np.ndarray:
        return self._combine(self._features.sum(idx))

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "seed": self.seed, "trees": self.trees}

    def _set_state(self, state: dict[str, Any]) -> None:
        super()._set_state(state)
        self.seed = int(state.get("seed", 0))
        self.trees = state["trees"]

    def describe(self) -> str:
        err = f"{self.rel_error:.1%}" if self.rel_error is not None else "unknown"
        return "\n".join([
            self._header(),
            "latency = fox regression x (1 + r), r = gradient-boosted trees "
            f"({len(self.trees.get('trees', []))} trees, depth <= 2, learning rate "
            f"{self.trees.get('learning_rate')}) on the same features, fitted to the "
            "regression's leave-one-out relative residuals",
            f"{FOLDS}-fold cross-validated relative RMS error {err}",
            *self.bounds_lines(),
            "the linear part:",
            *self.coefficient_lines(),
        ])
