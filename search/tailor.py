"""HURRICANE's generator: a hardware-specific space from the full operator pool.

Zhang et al., "Fast Hardware-Aware Neural Architecture Search" (CVPRW 2020): one space
does not fit all hardware (large kernels, SE and h-swish are cheap on one device and slow
on another), so for each target a generator keeps the candidate ops that are
hardware-friendly, "considering both representation capacity and hardware efficiency".

How this implementation measures the two (the paper gives no formula):

- *Representation capacity* of an op is device-independent: the accuracy estimator's
  score of a probe network that uses that op in every slot it can take (the op's own
  network, as op-ranking studies do), normalised to [0, 1] over the pool. One estimator
  call per distinct op.
- *Hardware cost* of an op in a slot is device-specific: the predicted latency change of
  swapping the op into the default arch at that slot, over the budget (worst device for
  a multi-device search): the devices' own measurements decide it.

Per slot, ops on the (capacity, cost) Pareto front are kept first, ranked by
`capacity - weight * cost_share` (cost as a share of the slot's cost range), up to
`keep` ops; the slot's cheapest op is always kept so the budget stays reachable, and
`skip` is kept where the slot allows it so depth remains searchable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spaces import Arch, Space

from .constraints import LatencyBudget, marginal_cost
from .protocols import AccuracyEstimator


@dataclass(frozen=True)
class Tailoring:
    """The generator's output: the tailored space and why each slot kept what it kept."""

    pool: Space
    space: Space
    kept: tuple[tuple[str, ...], ...]
    capacity: dict[str, float]
    cost: np.ndarray

    def summary(self) -> list[dict[str, object]]:
        """Per slot: name, and each kept op's capacity and cost (share of the budget)."""
        out = []
        for i, slot in enumerate(self.space.slots):
            full = self.pool.slots[i].choices
            out.append({"slot": slot.name, "kept": [
                {"op": op, "capacity": round(self.capacity[op], 4),
                 "cost": round(float(self.cost[i, full.index(op)]), 5)}
                for op in self.kept[i]]})
        return out


def probe_arch(space: Space, op: str) -> Arch:
    """`op` in every slot that allows it, the default op elsewhere."""
    default = space.default()
    return Arch(tuple(op if op in slot.choices else d
                      for slot, d in zip(space.slots, default.ops, strict=True)))


def op_capacity(space: Space, estimator: AccuracyEstimator) -> dict[str, float]:
    """Each op's estimated capacity in [0, 1] (see the module docstring)."""
    ops = sorted({op for slot in space.slots for op in slot.choices})
    scores = np.asarray(estimator.score([probe_arch(space, op) for op in ops]), dtype=float)
    if scores.shape != (len(ops),) or not np.all(np.isfinite(scores)):
        raise ValueError("estimator returned non-finite scores for the probe archs")
    span = float(scores.max() - scores.min())
    norm = (scores - scores.min()) / span if span > 0 else np.ones_like(scores)
    return dict(zip(ops, norm.tolist(), strict=True))


def tailor(space: Space, estimator: AccuracyEstimator, budget: LatencyBudget, *,
           keep: int = 6, weight: float = 1.0,
           capacity: dict[str, float] | None = None) -> Tailoring:
    """Keep at most `keep` hardware-friendly ops per slot for the budget's devices.

    Args:
        space: The full space (the operator pool).
        estimator: Scores the probe archs for capacity (ignored when `capacity` is given).
        budget: The devices and budgets; their predictors give each op's cost per slot.
        keep: Ops kept per slot (at least 2).
        weight: Trade-off of cost against capacity when the Pareto front is larger than
            `keep`; 0 keeps the highest-capacity Pareto ops.
        capacity: Precomputed `op_capacity`, shared between devices of one search.
    """
    if not isinstance(keep, int) or keep < 2:
        raise ValueError(f"keep must be an integer >= 2, got {keep!r}")
    if weight < 0:
        raise ValueError(f"weight must be >= 0, got {weight!r}")
    cap = capacity if capacity is not None else op_capacity(space, estimator)
    cost = marginal_cost(space, budget)
    kept: list[tuple[str, ...]] = []
    for i, slot in enumerate(space.slots):
        kept.append(_keep_slot(slot.choices, cost[i, :len(slot.choices)], cap,
                               keep=keep, weight=weight))
    tailored = space.restrict(dict(enumerate(kept)))
    return Tailoring(space, tailored, tuple(tuple(tailored.slots[i].choices)
                                     for i in range(len(kept))), cap, cost)


def _keep_slot(choices: Sequence[str], cost: np.ndarray, cap: dict[str, float], *,
               keep: int, weight: float) -> tuple[str, ...]:
    c = np.array([cap[op] for op in choices])
    cheapest = int(np.argmin(cost))
    chosen = [cheapest]
    if "skip" in choices:
        chosen.append(choices.index("skip"))
    span = float(cost.max() - cost.min()) or 1.0
    share = (cost - cost.min()) / span
    # Pareto front on (capacity up, cost down): no other op is at least as good on both
    # and better on one.
    front = [j for j in range(len(choices))
             if not np.any((c >= c[j]) & (cost <= cost[j]) & ((c > c[j]) | (cost < cost[j])))]
    rank = sorted(front, key=lambda j: -(c[j] - weight * share[j]))
    rest = sorted(set(range(len(choices))) - set(front), key=lambda j: -(c[j] - weight * share[j]))
    for j in rank + rest:
        if len(chosen) >= keep:
            break
        if j not in chosen:
            chosen.append(j)
    return tuple(choices[j] for j in sorted(chosen))
