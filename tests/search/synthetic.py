"""A cheap, real objective and budget for judging strategies (tests and benchmarks).

The score is a fixed random linear function of the space's one-hot features, plus a pull
towards costly ops (in real spaces bigger ops are both more accurate and slower); the
constraint's ratio is a fixed random positive linear cost of the same features over a
budget set at a quantile of random archs' costs. Both implement the `search.protocols`
interfaces, so strategies meet them exactly as they meet real estimators and predictors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spaces import Arch, Space


class LinearCost:
    """`ratio = features @ cost / budget`, the budget at `quantile` of random archs' costs."""

    def __init__(self, space: Space, *, seed: int, quantile: float = 0.3) -> None:
        rng = np.random.default_rng([seed, 1])
        self.space = space
        self.weights = rng.uniform(0.2, 1.0, size=int(sum(space.num_choices)))
        sample = [space.sample(rng) for _ in range(512)]
        self.budget = float(np.quantile(self.cost(sample), quantile))

    def cost(self, archs: Sequence[Arch]) -> np.ndarray:
        return self.space.features_batch(list(archs)).astype(np.float64) @ self.weights

    def ratio(self, archs: Sequence[Arch]) -> np.ndarray:
        return self.cost(archs) / self.budget


class LinearScore:
    """`score = features @ (w + pull * standardised cost weights + structure * f)`.

    `w` is standard normal per (slot, op). `f` gives every op the sum of standard normal
    values drawn once per (factor, value) of `space.op_factors`, the same in every slot:
    the shape of real accuracy, where e.g. a larger expansion helps wherever it is used
    (zero for a space without factors).
    """

    def __init__(self, space: Space, *, seed: int, cost: LinearCost | None = None,
                 pull: float = 1.0, structure: float = 0.0) -> None:
        rng = np.random.default_rng([seed, 2])
        self.space = space
        self.weights = rng.standard_normal(int(sum(space.num_choices)))
        if cost is not None:
            c = cost.weights
            self.weights += pull * (c - c.mean()) / c.std()
        if structure:
            self.weights += structure * self._factor_weights(np.random.default_rng([seed, 3]))
        self.calls = 0

    def _factor_weights(self, rng: np.random.Generator) -> np.ndarray:
        values: dict[tuple[str, str], float] = {}
        out: list[float] = []
        for i in range(len(self.space.slots)):
            factors = self.space.op_factors(i)
            if factors is None:
                return np.zeros(int(sum(self.space.num_choices)))
            for f in factors:
                out.append(sum(values.setdefault(kv, float(rng.standard_normal()))
                               for kv in sorted(f.items())))
        return np.array(out)

    def score(self, archs: Sequence[Arch]) -> np.ndarray:
        self.calls += len(archs)
        return self.space.features_batch(list(archs)).astype(np.float64) @ self.weights

    def describe(self) -> str:
        return "synthetic: a fixed random linear function of the space's one-hot features"


def run(strategy_name: str, space: Space, *, seed: int, calls: int,
        constrained: bool = True, structure: float = 0.0, **params: object) -> list[float]:
    """Ask/tell `strategy_name` for `calls` scores; the running best after each call.

    Fewer than `calls` entries when the strategy ends early (exhausted or converged).
    """
    from search.strategies import get_strategy

    cost = LinearCost(space, seed=seed) if constrained else None
    objective = LinearScore(space, seed=seed, cost=cost, structure=structure)
    strategy = get_strategy(strategy_name, space, seed=seed, constraint=cost, **params)
    best: list[float] = []
    while len(best) < calls:
        suggested = getattr(strategy, "suggested_batch", None)
        n = min(suggested() if callable(suggested) else 8, calls - len(best))
        archs = strategy.ask(n)
        if not archs:
            break
        scores = objective.score(archs)
        strategy.tell(archs, scores)
        for s in scores.tolist():
            best.append(max(best[-1], s) if best else s)
    return best
