"""The small interfaces the search is built from, passed in rather than looked up.

once-for-all's `EvolutionFinder(efficiency_predictor, accuracy_predictor)` is the model:
a strategy proposes architectures, a driver scores them with an `AccuracyEstimator` and
keeps them inside a `Constraint` made from the devices' latency predictors. Strategies
never call either themselves; they see scores through `tell` and feasibility through the
constraint they were given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from spaces import Arch


@runtime_checkable
class LatencyModel(Protocol):
    """What the search needs of a latency predictor: milliseconds for many archs at once."""

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        """Predicted latency in ms, shape (len(archs),), float64."""
        ...


@runtime_checkable
class AccuracyEstimator(Protocol):
    """Ranks architectures by estimated accuracy: higher is better."""

    def score(self, archs: Sequence[Arch]) -> np.ndarray:
        """One score per arch, shape (len(archs),), float64; comparable within one estimator."""
        ...

    def describe(self) -> str:
        """One paragraph: what the score is, its source (paper), its settings."""
        ...


@runtime_checkable
class Constraint(Protocol):
    """A hardware budget: for each arch, its cost over the budget (max over devices).

    `ratio(archs) <= 1` means feasible. Strategies use it to reject (or repair) infeasible
    candidates before they are ever scored, and FP-NAS uses its hinge
    `max(0, ratio - 1)` as the cost term.
    """

    def ratio(self, archs: Sequence[Arch]) -> np.ndarray:
        """Predicted cost / budget per arch, shape (len(archs),); the worst device counts."""
        ...
