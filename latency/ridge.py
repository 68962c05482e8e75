"""Weighted ridge regression with its penalty chosen by exact leave-one-out error.

The fox and flops predictors are fitted on as few as 5-20 measured archs, so the
penalty cannot be left to a default: for every ``alpha`` of a grid, the leave-one-out
residuals of ridge have a closed form, ``e_i / (1 - h_ii)`` with ``h`` the hat matrix
(Golub, Heath & Wahba, "Generalized Cross-Validation as a Method for Choosing a Good
Ridge Parameter", Technometrics 1979), so choosing ``alpha`` costs one SVD. Features are
standardised, the intercept is not penalised, and rows are weighted (the predictors
weight by ``1 / y^2`` so the fit minimises relative, not absolute, error). The LOO
residuals at the chosen ``alpha`` are kept: they are the honest error estimate behind a
predictor's ``predict_std``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RidgeFit", "fit_ridge"]

DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-4, 4, 33))


@dataclass
class RidgeFit:
    """A fitted ridge model in the features' own units.

    Attributes:
        coef: One coefficient per feature (original units).
        intercept: The constant term.
        alpha: The chosen penalty (on standardised features, relative to the row count).
        loo_residuals: ``y_i`` minus the prediction of the model fitted without row ``i``.
        scale: The features' weighted standard deviations (1 where constant).
    """

    coef: np.ndarray
    intercept: float
    alpha: float
    loo_residuals: np.ndarray
    scale: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        return x @ self.coef + self.intercept


def fit_ridge(x: np.ndarray, y: np.ndarray, *, weights: np.ndarray | None = None,
              alphas: tuple[float, ...] = DEFAULT_ALPHAS) -> RidgeFit:
    """Fit ``y ~ x`` by weighted ridge, ``alpha`` chosen by weighted leave-one-out error.

    Args:
        x: Features, shape (n, p).
        y: Targets, shape (n,).
        weights: Row weights (> 0), default all 1.
        alphas: Penalties to choose from; multiplied by ``n`` (the scale of ``Z'Z``).

    Raises:
        ValueError: Fewer than 3 rows, shapes that do not match, or non-finite values.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = x.shape[0]
    if x.ndim != 2 or y.shape != (n,):
        raise ValueError(f"x must be (n, p) and y (n,), got {x.shape} and {y.shape}")
    if n < 3:
        raise ValueError(f"need at least 3 samples to fit and cross-validate, got {n}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("features and targets must be finite")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    mean = w @ x
    centred = x - mean
    scale = np.sqrt(w @ centred**2)
    scale[scale < 1e-12 * (1 + np.abs(mean))] = 1.0
    z = centred / scale
    y_mean = float(w @ y)
    sw = np.sqrt(w * n)
    u, s, vt = np.linalg.svd(z * sw[:, None], full_matrices=False)
    uty = u.T @ ((y - y_mean) * sw)
    lever0 = w  # the intercept's leverage with weighted centring
    if not alphas:
        raise ValueError("alphas: give at least one penalty")
    results = []
    for alpha in alphas:
        shrink = s**2 / (s**2 + alpha * n)
        coef_z = vt.T @ (s / (s**2 + alpha * n) * uty)
        hat = (u**2) @ shrink + lever0
        resid = y - y_mean - z @ coef_z
        loo = resid / np.clip(1.0 - hat, 1e-9, None)
        results.append((float(w @ loo**2), alpha, coef_z, loo))
    _, alpha, coef_z, loo = min(results, key=lambda r: r[0])
    coef = coef_z / scale
    return RidgeFit(coef=coef, intercept=float(y_mean - mean @ coef), alpha=alpha,
                    loo_residuals=loo, scale=scale)
