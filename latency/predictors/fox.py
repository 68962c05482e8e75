"""`fox`: an explainable linear regression on top of the LUT sum (or on FLOPs without one).

FOX-NAS (Liu et al., "FOX-NAS: Fast, On-device and Explainable Neural Architecture
Search", ICCVW 2021) predicts latency with a plain multivariate linear regression on
hand-built per-stage features (blocks, mean expansion and kernel, and their products with
the block count), whose coefficients can be read. Here the features are additive per slot
(:mod:`latency.features`): with a LUT, the LUT sum, its per-stage parts and the op-type
counts (skip, SE, h-swish, kernel 5/7, expansion 3/6) plus FOX-NAS's per-stage blocks and
sums of expansion and kernel; without one, FLOPs and their per-stage parts replace the LUT
columns, so the model is fitted from (arch, latency) pairs alone.

Departures, for fits on 10-20 archs where FOX-NAS had 300: the regression is ridge with
its penalty chosen by exact leave-one-out error (:mod:`latency.ridge`), rows weighted by
``1 / latency^2`` (the fit minimises relative error, which is what ``within +-10%``
judges); and with a LUT the target is ``measured - LUT sum``, so the LUT sum's coefficient
is ``1 +`` a penalised correction: with little data the model falls back to the LUT, not
to a constant. The leave-one-out relative error is kept as the model's uncertainty.

With a LUT, a prediction is also kept within the relative corrections the measured archs
needed: between ``LUT sum x (1 + min_i(y_i / LUT_i - 1))`` and the same with the max. A
search maximises accuracy under a budget, so it seeks out exactly the archs whose latency
the model under-predicts; on archs unlike the measured ones a linear correction fitted on
24 archs with 32 features can be far off. Measured (mbv2 width 0.5 at 224 px, 24 fitted
archs, `benchmarks/search_quality.py --seed 0`): the found archs were predicted at 2.28
and 2.33 ms and measured 3.36 and 3.76 ms (-32%, -38%), with LUT sums of 3.60 and 3.75 ms,
while the fitted archs' corrections spanned a few percent. Random archs, what the
predictor benchmarks judge on, are rarely clipped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spaces import Space

from ..features import Table, flops_table, lut_table, lut_var_table, structure_table
from ..lut import LookupTable
from ..ridge import fit_ridge
from ..samples import Samples
from .base import Predictor, register_predictor

__all__ = ["FoxPredictor", "linear_features"]


def linear_features(space: Space, lut: LookupTable | None) -> Table:
    """The fox features: LUT columns (or FLOPs columns without a LUT) + structure."""
    first = lut_table(space, lut) if lut is not None else flops_table(space)
    return first.concat(structure_table(space))


def relative_rms(residuals: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((residuals / y) ** 2)))


@register_predictor("fox")
class FoxPredictor(Predictor):
    """Ridge regression on additive arch features, anchored on the LUT sum when there is one.

    Needs at least 3 end-to-end measured archs; the LUT is optional.
    """

    needs_lut = None
    min_samples = 3

    def __init__(self) -> None:
        super().__init__()
        self.coef = np.zeros(0)
        self.scale = np.zeros(0)
        self.intercept = 0.0
        self.alpha = 0.0
        self.rel_error: float | None = None
        # (min, max) of measured / LUT sum - 1 over the fitted archs (None: no LUT, or a
        # file written before the bounds were kept).
        self.correction: tuple[float, float] | None = None

    def _prepare(self) -> None:
        self._features = linear_features(self.space, self.lut)
        self._var = lut_var_table(self.space, self.lut) if self.lut is not None else None

    def _anchor(self) -> np.ndarray:
        """1 on ``lut_ms`` with a LUT (the sum passes through), else 0."""
        anchor = np.zeros(len(self._features.names))
        if self.lut is not None:
            anchor[self._features.names.index("lut_ms")] = 1.0
        return anchor

    def fit_features(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Fit on a feature matrix (rows of ``self._features``); returns LOO predictions."""
        base = x @ self._anchor()
        fit = fit_ridge(x, y - base, weights=1.0 / y**2)
        self.coef, self.scale, self.intercept, self.alpha = (
            fit.coef, fit.scale, fit.intercept, fit.alpha)
        self.rel_error = relative_rms(fit.loo_residuals, y)
        if self.lut is not None:
            ratio = y / base - 1.0
            self.correction = (float(ratio.min()), float(ratio.max()))
        self._finish()
        return y - fit.loo_residuals

    def _fit(self, samples: Samples | None) -> None:
        if samples is None:
            raise ValueError("fox: needs end-to-end samples")
        self.fit_features(self._features.sum(self.indices(samples.archs)), samples.latency_ms)

    def _finish(self) -> None:
        self._linear = self._features.combine(self.coef + self._anchor())
        self._base = self._features.combine(self._anchor())

    def _predict(self, idx: np.ndarray) -> np.ndarray:
        return self.bounded(self._linear.sum(idx)[:, 0] + self.intercept,
                            self._base.sum(idx)[:, 0])

    def bounded(self, pred: np.ndarray, base: np.ndarray) -> np.ndarray:
        """`pred` kept within the fitted archs' corrections of the LUT sums `base`."""
        if self.correction is None:
            return pred
        low, high = self.correction
        return np.clip(pred, base * (1.0 + low), base * (1.0 + high))

    def _std(self, idx: np.ndarray, pred: np.ndarray) -> np.ndarray:
        var = self._var.sum(idx)[:, 0] if self._var is not None else 0.0
        return np.sqrt(var + ((self.rel_error or 0.0) * pred) ** 2)

    def _state(self) -> dict[str, Any]:
        return {"features": self._features.names, "coef": self.coef.tolist(),
                "scale": self.scale.tolist(), "intercept": self.intercept,
                "alpha": self.alpha, "rel_error": self.rel_error,
                "correction": None if self.correction is None else list(self.correction)}

    def _set_state(self, state: dict[str, Any]) -> None:
        if state.get("features") != self._features.names:
            raise ValueError(f"{self.kind} predictor file: its features do not match the "
                             f"space's ({len(state.get('features') or [])} vs "
                             f"{len(self._features.names)})")
        self.coef = np.asarray(state["coef"], dtype=np.float64)
        self.scale = np.asarray(state["scale"], dtype=np.float64)
        self.intercept, self.alpha = float(state["intercept"]), float(state["alpha"])
        self.rel_error = state.get("rel_error")
        bounds = state.get("correction")
        self.correction = None if bounds is None else (float(bounds[0]), float(bounds[1]))
        self._finish()

    def coefficient_lines(self) -> list[str]:
        """One line per feature: coefficient, and its effect over one training std."""
        lines = [f"  {'feature':<18} {'coef (ms/unit)':>15} {'x 1 std (ms)':>13}"]
        order = np.argsort(-np.abs(self.coef * self.scale))
        for i in order:
            name = self._features.names[i]
            coef = self.coef[i] + (1.0 if self.lut is not None and name == "lut_ms" else 0.0)
            lines.append(f"  {name:<18} {coef:>15.5f} {self.coef[i] * self.scale[i]:>13.4f}")
        return lines

    def describe(self) -> str:
        base = ("latency = lut_ms x coef + sum(coef x feature) + intercept; the lut_ms "
                "coefficient is 1 + a ridge-penalised correction"
                if self.lut is not None else
                "latency = sum(coef x feature) + intercept (no LUT: FLOPs and op counts)")
        err = f"{self.rel_error:.1%}" if self.rel_error is not None else "unknown"
        return "\n".join([
            self._header(), base,
            f"ridge alpha {self.alpha:.3g} (leave-one-out), intercept {self.intercept:+.4f} ms, "
            f"leave-one-out relative RMS error {err}",
            *self.bounds_lines(),
            *self.coefficient_lines(),
        ])

    def bounds_lines(self) -> list[str]:
        if self.correction is None:
            return []
        return [f"predictions kept within {self.correction[0]:+.1%} .. "
                f"{self.correction[1]:+.1%} of the LUT sum (the fitted archs' range)"]
