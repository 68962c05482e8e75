"""FP-NAS: PARSEC with entropy-adaptive sample counts and a coarse-to-fine distribution.

Yan et al., "FP-NAS: Fast Probabilistic Neural Architecture Search" (CVPR 2021):

- adaptive sampling: each update uses `K = ceil(entropy_scale * H(P(A | alpha)))` samples,
  H in nats summed over slots, clipped to `[k_min, k_max]` (the paper's lambda = 1/4 gives
  about 14 at the start of its space, fewer as the distribution sharpens);
  `suggested_batch()` tells the driver how many to ask for;
- coarse-to-fine: first a factorised distribution, each op's logit the sum of its factors'
  logits (so P(op) is the product of the factors' probabilities, renormalised over the
  ops the slot allows), then, after `switch_after` told archs, the full categorical per
  slot initialised from it (same probabilities) with a fresh optimizer;
- a cost term weighted by `cost_weight` (the paper's beta), see
  `search.strategies.categorical` for how it works with rejection sampling.

The factors are the space's (`Space.op_factors`: for mbv2 block type, kernel, expansion,
SE and activation); a space without them (nb201) uses the full categorical from the start.

Departures: the paper factorises each block separately; here `share` picks whether factor
logits are shared by all slots ("all"), by the slots of a stage ("stage", the default: a
slot that changes shape or stride starts a new stage) or not shared ("none", the paper's).
Sharing pools the evidence of many slots while few archs have been scored. The switch
counts told archs rather than epochs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from search.protocols import Constraint
from spaces import Space

from .base import check_float, check_int, register_strategy
from .categorical import CategoricalStrategy

SHARING = ("stage", "all", "none")


def factor_design(space: Space, share: str) -> np.ndarray | None:
    """0/1 matrix D with `logits = D @ factor_logits`, or None if the space has no factors.

    Rows follow the flat per-slot logits (`features_batch` columns); a column is one
    (group, factor, value), the group being given by `share`.
    """
    per_slot = [space.op_factors(i) for i in range(len(space.slots))]
    if any(f is None for f in per_slot):
        return None
    groups, group = [], -1
    for i, slot in enumerate(space.slots):
        if share == "none" or (share == "stage" and (
                i == 0 or slot.stride != 1 or slot.in_shape != slot.out_shape)):
            group += 1
        groups.append(max(group, 0))
    columns: dict[tuple[int, str, str], int] = {}
    rows = []
    for i, factors in enumerate(per_slot):
        for f in factors or ():
            rows.append([columns.setdefault((groups[i], k, v), len(columns)) for k, v in f.items()])
    design = np.zeros((len(rows), len(columns)), dtype=np.float64)
    for r, cols in enumerate(rows):
        design[r, cols] = 1.0
    return design


@register_strategy("fpnas")
class FPNASSearch(CategoricalStrategy):
    """FP-NAS: adaptive K, coarse factorised then fine per-slot distribution, cost term.

    Args:
        space: The space to search.
        seed: Seeds the strategy.
        constraint: Hardware budget (None: no budget).
        entropy_scale: lambda in `K = ceil(lambda * H)`.
        k_min: Smallest K.
        k_max: Largest K.
        switch_after: Told archs after which the coarse phase ends (0: fine from the start).
        share: Who shares factor logits in the coarse phase: "stage", "all" or "none".
        lr: Step size on the parameters.
        temperature: Softmax temperature of the importance weights over standardised scores.
        optimizer: "adam" or "sgd".
        cost_weight: beta, weight of the expected-cost term.
        max_tries: Rejected proposals in a row before `ask` gives up.
    """

    def __init__(self, space: Space, *, seed: int, constraint: Constraint | None = None,
                 entropy_scale: float = 0.25, k_min: int = 4, k_max: int = 64,
                 switch_after: int = 100, share: str = "stage", lr: float = 0.2,
                 temperature: float = 1.0, optimizer: str = "adam", cost_weight: float = 1.0,
                 max_tries: int = 1000) -> None:
        super().__init__(space, seed=seed, constraint=constraint, lr=lr,
                         temperature=temperature, optimizer=optimizer,
                         cost_weight=cost_weight, max_tries=max_tries)
        self.entropy_scale = check_float("entropy_scale", entropy_scale, low=0.0, low_open=True)
        self.k_min = check_int("k_min", k_min, low=2)
        self.k_max = check_int("k_max", k_max, low=self.k_min)
        self.switch_after = check_int("switch_after", switch_after, low=0)
        if share not in SHARING:
            raise ValueError(f"share must be one of {', '.join(SHARING)}, got {share!r}")
        self.share = share
        self._design = factor_design(space, share) if switch_after > 0 else None
        if self._design is not None:
            self.theta = np.zeros(self._design.shape[1], dtype=np.float64)
            self._reset_optimizer()

    @classmethod
    def budget_params(cls, calls: int, given: Mapping[str, Any]) -> dict[str, Any]:
        """The coarse phase ends after half the calls at most (100 from 200 calls up), so
        that a short search also reaches the full per-slot distribution."""
        return {} if "switch_after" in given else {"switch_after": min(100, max(1, calls // 2))}

    @property
    def params(self) -> dict[str, Any]:
        return {**super().params, "entropy_scale": self.entropy_scale, "k_min": self.k_min,
                "k_max": self.k_max, "switch_after": self.switch_after, "share": self.share}

    @property
    def phase(self) -> str:
        """"coarse" while the factorised distribution is learned, then "fine"."""
        return "fine" if self._design is None else "coarse"

    def batch_size(self) -> int:
        k = math.ceil(self.entropy_scale * self.entropy())
        return int(min(self.k_max, max(self.k_min, k)))

    def logits(self) -> np.ndarray:
        return self.theta if self._design is None else self._design @ self.theta

    def _param_gradient(self, grad_logits: np.ndarray) -> np.ndarray:
        return grad_logits if self._design is None else self._design.T @ grad_logits

    def _after_update(self) -> None:
        if self._design is not None and len(self._scores) >= self.switch_after:
            self.theta = self._design @ self.theta
            self._design = None
            self._reset_optimizer()

    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "phase": self.phase}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        phase = extra.get("phase")
        if phase not in ("coarse", "fine") or (phase == "coarse" and self._design is None):
            raise ValueError(f"state.extra.phase must be 'coarse' or 'fine' (coarse only for a "
                             f"space with factors and switch_after > 0), got {phase!r}")
        if phase == "fine" and self._design is not None:
            self.theta = np.zeros(self._design.shape[0], dtype=np.float64)
            self._design = None
        super()._load_extra_state(extra)
