"""Gradient-boosted regression trees, fitted by scikit-learn, stored and run as plain arrays.

A fitted ``GradientBoostingRegressor`` is a constant plus ``learning_rate`` times the sum
of its trees' leaf values. Each tree is kept as its node arrays (feature, threshold,
children, value) in JSON, so a predictor file is data, never pickled code, and predicting
needs numpy only: each tree is one `where` per inner node over all rows. The
fit checks that these arrays reproduce scikit-learn's own predictions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["fit_boosting", "predict_boosting"]


def fit_boosting(x: np.ndarray, y: np.ndarray, *, seed: int = 0, n_estimators: int = 200,
                 learning_rate: float = 0.05, max_depth: int = 2) -> dict[str, Any]:
    """Fit gradient boosting (squared error) and return it as JSON-safe arrays.

    Leaves hold at least ``max(3, n // 20)`` rows and each tree sees 80% of them, so a few
    dozen samples do not get memorised.
    """
    from sklearn.ensemble import GradientBoostingRegressor

    n = x.shape[0]
    model = GradientBoostingRegressor(
        n_estimators=n_estimators, learning_rate=learning_rate, max_depth=max_depth,
        min_samples_leaf=max(3, n // 20), subsample=0.8 if n >= 10 else 1.0,
        random_state=seed,
    ).fit(x, y)
    trees = []
    for est in model.estimators_[:, 0]:
        t = est.tree_
        trees.append({"feature": t.feature.tolist(), "threshold": t.threshold.tolist(),
                      "left": t.children_left.tolist(), "right": t.children_right.tolist(),
                      "value": t.value[:, 0, 0].tolist()})
    state: dict[str, Any] = {"learning_rate": learning_rate, "offset": 0.0, "trees": trees}
    first = x[:1]
    state["offset"] = float(model.predict(first)[0] - predict_boosting(state, first)[0])
    if not np.allclose(predict_boosting(state, x), model.predict(x), rtol=1e-9, atol=1e-9):
        raise RuntimeError("boosted trees: the exported arrays do not reproduce scikit-learn")
    return state


def predict_boosting(state: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Predictions of a :func:`fit_boosting` state for rows ``x`` (n, features).

    Each tree is evaluated bottom-up over all rows at once: a leaf is its value, an inner
    node is ``where(x[:, feature] <= threshold, left, right)``, on contiguous columns.
    """
    cols = np.asfortranarray(np.asarray(x, dtype=np.float32).astype(np.float64))
    total = np.zeros(cols.shape[0])
    for tree in state["trees"]:
        total += _tree_value(tree, 0, cols)
    return state["offset"] + state["learning_rate"] * total


def _tree_value(tree: dict[str, list], node: int, cols: np.ndarray) -> np.ndarray | float:
    left = tree["left"][node]
    if left < 0:
        return float(tree["value"][node])
    go_left = cols[:, tree["feature"][node]] <= np.float64(tree["threshold"][node])
    return np.where(go_left, _tree_value(tree, left, cols),
                    _tree_value(tree, tree["right"][node], cols))
