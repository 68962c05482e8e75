"""The shared machinery of PARSEC and FP-NAS: a learned categorical per slot, trained by
importance-weighted REINFORCE from told scores.

Casale et al., "Probabilistic Neural Architecture Search" (2019): P(A | alpha) is a product
of independent categoricals, one per slot, `softmax(alpha_i)`; each step samples K archs,
scores them, and follows the Monte-Carlo gradient `sum_k w_k grad log P(A_k | alpha)` with
self-normalised weights `w_k`.

Choices made here (the paper weighs by likelihood of validation data under shared weights;
a driver here gives scores):

- weights `w = softmax(z / temperature)` with `z` the batch's standardised scores, and the
  batch mean of `grad log P` as baseline, i.e. the gradient is `sum_k (w_k - 1/K) grad log
  P(A_k)`: the uniform-weight term has zero mean, so subtracting it keeps the expectation
  and lowers the variance. A batch whose scores are all equal moves nothing.
- the K samples of one step are all drawn from the same alpha: told archs wait in a buffer
  until K are there (K = `batch_size()`), then one Adam (or SGD) ascent step is taken.
  A sample that repeats an arch already told joins the buffer with its known score.
- an optional cost term `cost_weight` (FP-NAS's beta): over-budget samples are rejected
  before scoring, so a hinge on the reward would always be 0; instead every sample drawn
  in a step, the rejected ones included, carries the cost `log(max(1, ratio))` (the hinge
  `log(1 + max(0, ratio - 1))`) and REINFORCE lowers the expected cost with weight
  `cost_weight`. This steers the distribution away from infeasible regions, which keeps
  rejection sampling cheap under tight budgets. The paper's `beta * log C(alpha)` with
  `C = max(0, cost / target - 1)` is minus infinity for feasible archs, so it is not used.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any

import numpy as np

from search.protocols import Constraint
from spaces import Arch, Space

from .base import Strategy, check_float

OPTIMIZERS = ("adam", "sgd")
_ADAM_B1, _ADAM_B2, _ADAM_EPS = 0.9, 0.999, 1e-8


class CategoricalStrategy(Strategy):
    """A per-slot categorical distribution over the space, learned by weighted REINFORCE.

    Subclasses implement `batch_size()` (K, the samples per update) and may reparameterise
    the logits by overriding `logits()` and `_param_gradient()`.

    Args:
        space: The space to search.
        seed: Seeds the strategy.
        constraint: Hardware budget (None: no budget).
        lr: Step size of the ascent on the parameters.
        temperature: Softmax temperature of the importance weights over standardised scores.
        optimizer: "adam" or "sgd".
        cost_weight: Weight of the expected-cost term (0: none).
        max_tries: Rejected proposals in a row before `ask` gives up.
    """

    def __init__(self, space: Space, *, seed: int, constraint: Constraint | None = None,
                 lr: float = 0.2, temperature: float = 1.0, optimizer: str = "adam",
                 cost_weight: float = 0.0, max_tries: int = 1000) -> None:
        super().__init__(space, seed=seed, constraint=constraint, max_tries=max_tries)
        self.lr = check_float("lr", lr, low=0.0, low_open=True)
        self.temperature = check_float("temperature", temperature, low=0.0, low_open=True)
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
        self.optimizer = optimizer
        self.cost_weight = check_float("cost_weight", cost_weight, low=0.0)
        sizes = np.array(space.num_choices, dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self._slot_of = np.repeat(np.arange(len(sizes)), sizes)
        self.theta = np.zeros(int(sizes.sum()), dtype=np.float64)
        self._reset_optimizer()
        self._buffer: list[tuple[Arch, float]] = []
        self._rejected: list[tuple[Arch, float]] = []
        self._cdf: list[np.ndarray] = []
        self.updates = 0

    @property
    def params(self) -> dict[str, Any]:
        return {**super().params, "lr": self.lr, "temperature": self.temperature,
                "optimizer": self.optimizer, "cost_weight": self.cost_weight}

    # --- the distribution -------------------------------------------------------------

    @abstractmethod
    def batch_size(self) -> int:
        """K: told samples per update (and the batch the driver should ask for)."""

    def suggested_batch(self) -> int:
        """How many archs to ask for at once: one update's worth."""
        return max(1, self.batch_size() - len(self._buffer))

    def logits(self) -> np.ndarray:
        """Flat per-slot logits alpha, laid out like `space.features_batch` columns."""
        return self.theta

    def _param_gradient(self, grad_logits: np.ndarray) -> np.ndarray:
        """Chain rule from d/d(logits) to d/d(theta) (identity: theta are the logits)."""
        return grad_logits

    def probabilities(self) -> list[np.ndarray]:
        """softmax(alpha_i) for every slot i."""
        alpha = self.logits()
        out = []
        for i, size in enumerate(self.space.num_choices):
            a = alpha[self._offsets[i]: self._offsets[i] + size]
            e = np.exp(a - a.max())
            out.append(e / e.sum())
        return out

    def entropy(self) -> float:
        """H(P(A | alpha)) in nats: the sum of the slots' entropies."""
        return float(sum(-(p[p > 0] * np.log(p[p > 0])).sum() for p in self.probabilities()))

    def mode(self) -> Arch:
        """The most likely arch under the current distribution."""
        return self.space.from_indices([int(np.argmax(p)) for p in self.probabilities()])

    # --- ask / tell -------------------------------------------------------------------

    def _ask(self, n: int) -> list[Arch]:
        self._cdf = [np.cumsum(p) for p in self.probabilities()]
        return self._collect(n, self._sample)

    def _sample(self) -> Arch:
        u = self.rng.random(len(self._cdf))
        idx = [min(int(np.searchsorted(c, x, side="right")), len(c) - 1)
               for c, x in zip(self._cdf, u, strict=True)]
        return self.space.from_indices(idx)

    def _on_known(self, arch: Arch, score: float) -> None:
        self._buffer.append((arch, score))

    def _on_rejected(self, arch: Arch, ratio: float) -> None:
        if self.cost_weight > 0:
            self._rejected.append((arch, ratio))

    def _tell(self, archs: list[Arch], scores: np.ndarray) -> None:
        self._buffer.extend(zip(archs, scores.tolist(), strict=True))
        if len(self._buffer) >= self.batch_size():
            self._update()
            self._buffer, self._rejected = [], []
            self._after_update()

    def _after_update(self) -> None:
        """Hook run after each update (FP-NAS switches coarse to fine here)."""

    def _update(self) -> None:
        archs = [a for a, _ in self._buffer]
        scores = np.array([s for _, s in self._buffer], dtype=np.float64)
        k = len(scores)
        std = scores.std()
        z = (scores - scores.mean()) / std if std > 0 else np.zeros(k)
        w = np.exp((z - z.max()) / self.temperature)
        coef = w / w.sum() - 1.0 / k
        grad = self._onehot_sum(archs, coef)
        if self.cost_weight > 0 and self._rejected:
            drawn = archs + [a for a, _ in self._rejected]
            cost = np.array([0.0] * k + [math.log(max(1.0, r)) for _, r in self._rejected])
            grad -= self.cost_weight * self._onehot_sum(drawn, (cost - cost.mean()) / len(cost))
        self._step(self._param_gradient(grad))
        self.updates += 1

    def _onehot_sum(self, archs: list[Arch], coef: np.ndarray) -> np.ndarray:
        """sum_k coef_k * onehot(A_k): `sum_k coef_k grad log P(A_k)` when `sum(coef) = 0`."""
        cols = self.space.to_indices(archs) + self._offsets
        grad = np.zeros_like(self.logits())
        np.add.at(grad, cols, np.broadcast_to(coef[:, None], cols.shape))
        return grad

    def _step(self, grad: np.ndarray) -> None:
        if self.optimizer == "sgd":
            self.theta = self.theta + self.lr * grad
            return
        self._t += 1
        self._m = _ADAM_B1 * self._m + (1 - _ADAM_B1) * grad
        self._v = _ADAM_B2 * self._v + (1 - _ADAM_B2) * grad**2
        m_hat = self._m / (1 - _ADAM_B1**self._t)
        v_hat = self._v / (1 - _ADAM_B2**self._t)
        self.theta = self.theta + self.lr * m_hat / (np.sqrt(v_hat) + _ADAM_EPS)

    def _reset_optimizer(self) -> None:
        self._m = np.zeros_like(self.theta)
        self._v = np.zeros_like(self.theta)
        self._t = 0

    # --- state ------------------------------------------------------------------------

    def _extra_state(self) -> dict[str, Any]:
        def rows(items: list[tuple[Arch, float]]) -> dict[str, list[Any]]:
            archs = [a for a, _ in items]
            return {"archs": self.space.to_indices(archs).tolist() if archs else [],
                    "values": [v for _, v in items]}

        return {"theta": self.theta.tolist(), "m": self._m.tolist(), "v": self._v.tolist(),
                "t": self._t, "updates": self.updates, "buffer": rows(self._buffer),
                "rejected": rows(self._rejected)}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        try:
            theta = np.array(extra["theta"], dtype=np.float64)
            if theta.shape != self.theta.shape:
                raise ValueError(f"state.extra.theta has {theta.size} values, "
                                 f"expected {self.theta.size}")
            self.theta = theta
            self._m = np.array(extra["m"], dtype=np.float64).reshape(theta.shape)
            self._v = np.array(extra["v"], dtype=np.float64).reshape(theta.shape)
            self._t, self.updates = int(extra["t"]), int(extra["updates"])
            self._buffer = self._pairs(extra["buffer"])
            self._rejected = self._pairs(extra["rejected"])
        except (KeyError, TypeError) as err:
            raise ValueError(f"state.extra is not a {self.name} state: {err}") from None

    def _pairs(self, rows: dict[str, list[Any]]) -> list[tuple[Arch, float]]:
        archs = [self.space.from_indices(r) for r in rows["archs"]]
        return list(zip(archs, [float(v) for v in rows["values"]], strict=True))
