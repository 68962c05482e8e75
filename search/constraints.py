"""Latency budgets on one or several devices, as the `Constraint` strategies obey.

A target is one device's latency predictor with its budget in milliseconds; an arch is
feasible when every target's predicted latency, plus ``sigmas`` of the predictor's own
uncertainty (``predict_std``), is within its budget. With no margin a search's winner sits
right at the budget and, the prediction error being two-sided, measures over it about half
the time; one sigma makes "under budget" the likely outcome at a small cost in room.
Several targets make a multi-device search: the arch returned meets all of them (none of
the papers in `PAPERS.md` does this; it is the natural generalisation of a single budget,
taking the worst device's ratio).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spaces import Arch, Space

from .protocols import LatencyModel


class UnreachableBudgetError(ValueError):
    """Even the fastest architecture of the space is over a budget."""


@dataclass(frozen=True)
class Target:
    """One device: a name, its latency predictor, its budget in ms, and the margin: the
    budget must hold at the prediction plus ``sigmas`` times the predictor's ``predict_std``
    (ignored for a predictor without one)."""

    name: str
    predictor: LatencyModel
    budget_ms: float
    sigmas: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.budget_ms, int | float) or not math.isfinite(self.budget_ms) \
                or self.budget_ms <= 0:
            raise ValueError(f"target {self.name!r}: budget_ms must be a positive number, "
                             f"got {self.budget_ms!r}")
        if not isinstance(self.sigmas, int | float) or not 0 <= self.sigmas <= 10:
            raise ValueError(f"target {self.name!r}: sigmas must be a number in [0, 10], "
                             f"got {self.sigmas!r}")

    def bound(self, archs: Sequence[Arch], predicted: np.ndarray) -> np.ndarray:
        """``predicted`` (ms of ``archs``) plus the margin: what the budget is checked on."""
        std = getattr(self.predictor, "predict_std", None)
        if not self.sigmas or not callable(std):
            return predicted
        spread = np.asarray(std(archs), dtype=np.float64)
        if spread.shape != predicted.shape or not np.all(np.isfinite(spread)):
            raise ValueError(f"target {self.name!r}: predict_std returned {spread.shape} "
                             f"values (or non-finite ones) for {len(archs)} archs")
        return predicted + self.sigmas * spread


class LatencyBudget:
    """The `Constraint` of a search: predicted latency / budget, worst target counts.

    Example:
        >>> budget = LatencyBudget([Target("cpu", predictor, 5.0)])  # doctest: +SKIP
        >>> budget.ratio(archs) <= 1                                  # doctest: +SKIP
    """

    def __init__(self, targets: Sequence[Target]) -> None:
        if not targets:
            raise ValueError("targets: a search needs at least one device with a budget")
        names = [t.name for t in targets]
        if len(set(names)) != len(names):
            raise ValueError(f"targets: device names must be unique, got {names}")
        self.targets = tuple(targets)

    def latencies(self, archs: Sequence[Arch]) -> dict[str, np.ndarray]:
        """Predicted ms per target, each of shape (len(archs),)."""
        out = {}
        for t in self.targets:
            ms = np.asarray(t.predictor.predict(archs), dtype=np.float64)
            if ms.shape != (len(archs),) or not np.all(np.isfinite(ms)):
                raise ValueError(f"target {t.name!r}: predictor returned {ms.shape} values "
                                 f"(or non-finite ones) for {len(archs)} archs")
            out[t.name] = ms
        return out

    def bounds(self, archs: Sequence[Arch]) -> dict[str, np.ndarray]:
        """Per target, predicted ms plus its margin (`Target.bound`)."""
        lat = self.latencies(archs)
        return {t.name: t.bound(archs, lat[t.name]) for t in self.targets}

    def ratio(self, archs: Sequence[Arch]) -> np.ndarray:
        """Worst target's bound over its budget, per arch: feasible where <= 1."""
        if not archs:
            return np.zeros(0)
        bound = self.bounds(archs)
        return np.max([bound[t.name] / t.budget_ms for t in self.targets], axis=0)

    def check_reachable(self, space: Space) -> None:
        """Raise `UnreachableBudgetError` when even the fastest arch of `space` is over budget.

        The fastest arch is found slot by slot from each op's marginal latency on the
        default arch, which is exact for additive (LUT) predictors and a close bound for
        the regressions on top of them; it is then checked with the full predictors.
        """
        fastest = fastest_arch(space, self)
        worst = float(self.ratio([fastest])[0])
        if worst > 1.0:
            lat, bound = self.latencies([fastest]), self.bounds([fastest])

            def reachable(t: Target) -> str:
                margin = (f", {bound[t.name][0]:.2f} ms with the {t.sigmas:g}-sigma margin"
                          if bound[t.name][0] != lat[t.name][0] else "")
                return f"{t.name}: {lat[t.name][0]:.2f} ms{margin} (budget {t.budget_ms:g} ms)"

            reach = ", ".join(reachable(t) for t in self.targets)
            raise UnreachableBudgetError(
                f"budget_ms: no arch of {space.name} meets the budget; the fastest reachable "
                f"latency is {reach}")


def marginal_cost(space: Space, budget: LatencyBudget) -> np.ndarray:
    """Per slot and choice: the worst-target ratio change of swapping that op into the default.

    Shape (len(slots), max choices); choices a slot lacks are +inf. Used to find the
    fastest arch and by the hardware-tailored generator to weigh ops on a device.
    """
    base = space.default()
    archs, where = [], []
    for i, slot in enumerate(space.slots):
        for j, op in enumerate(slot.choices):
            archs.append(Arch((*base.ops[:i], op, *base.ops[i + 1:])))
            where.append((i, j))
    lat = budget.latencies([*archs, base])
    out = np.full((len(space.slots), max(space.num_choices)), np.inf)
    # Per target, the change in ms over its budget; the worst target's change counts.
    deltas = np.max([(lat[t.name][:-1] - lat[t.name][-1]) / t.budget_ms
                     for t in budget.targets], axis=0)
    for (i, j), d in zip(where, deltas, strict=True):
        out[i, j] = d
    return out


def fastest_arch(space: Space, budget: LatencyBudget) -> Arch:
    """The arch with the cheapest op in every slot by marginal cost on the default arch."""
    cost = marginal_cost(space, budget)
    return space.from_indices([int(np.argmin(row)) for row in cost])
