"""Evolutionary search with top-k parents, mutation and crossover (SPOS / once-for-all).

Guo et al., "Single Path One-Shot Neural Architecture Search with Uniform Sampling" (ECCV
2020) and Cai et al., "Once-for-All" (ICLR 2020): a first generation of random feasible
archs, then children of the best archs found so far, by mutation (each slot resampled with
a small probability) or uniform crossover of two parents, every child within the latency
budget. SPOS's defaults: population 50, top 10 as parents, mutation probability 0.1, half
of the children by crossover.

Departures: steady-state rather than generational (parents are the top-k of everything
told so far, recomputed at every `ask`, so any batch size works; with `ask(population)`
it is SPOS's elitist generation), and children already asked are drawn again instead of
being re-scored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from search.protocols import Constraint
from spaces import Arch, Space

from .base import Strategy, check_float, check_int, register_strategy


@register_strategy("evolution")
class EvolutionSearch(Strategy):
    """SPOS/OFA-style evolution.

    Args:
        space: The space to search.
        seed: Seeds the strategy.
        constraint: Hardware budget (None: no budget).
        population: Random archs told before evolution starts (the first generation).
        parents: How many of the best archs told so far breed children.
        mutation_prob: Per-slot probability of resampling an op in a mutated child.
        crossover_prob: Share of children made by crossover of two parents (needs
            `parents >= 2`); the rest are mutants of one parent.
        max_tries: Rejected proposals in a row before `ask` gives up.
    """

    def __init__(self, space: Space, *, seed: int, constraint: Constraint | None = None,
                 population: int = 50, parents: int = 10, mutation_prob: float = 0.1,
                 crossover_prob: float = 0.5, max_tries: int = 1000) -> None:
        super().__init__(space, seed=seed, constraint=constraint, max_tries=max_tries)
        self.population = check_int("population", population, low=1)
        self.parents = check_int("parents", parents, low=1, high=self.population)
        self.mutation_prob = check_float("mutation_prob", mutation_prob, low=0.0, high=1.0)
        self.crossover_prob = check_float("crossover_prob", crossover_prob, low=0.0, high=1.0)

    @classmethod
    def budget_params(cls, calls: int, given: Mapping[str, Any]) -> dict[str, Any]:
        """A first generation of at most a third of the calls (SPOS's 50 from 150 calls
        up), and a fifth of it as parents (2 to 10), so that two thirds of a short search
        still evolve: with 40 calls and 50 random archs first, evolution is random search."""
        out: dict[str, Any] = {}
        population = given.get("population")
        if population is None:
            population = out["population"] = min(50, max(2, calls // 3))
        if "parents" not in given and isinstance(population, int):
            out["parents"] = min(10, max(2, population // 5), population)
        return out

    @property
    def params(self) -> dict[str, Any]:
        return {**super().params, "population": self.population, "parents": self.parents,
                "mutation_prob": self.mutation_prob, "crossover_prob": self.crossover_prob}

    def _ask(self, n: int) -> list[Arch]:
        told = self.history
        if len(told) < self.population or max(self.space.num_choices) < 2:
            return self._collect(n, lambda: self.space.sample(self.rng))
        order = np.argsort(-np.array([s for _, s in told]), kind="stable")
        parents = [told[int(i)][0] for i in order[: self.parents]]
        return self._collect(n, lambda: self._child(parents))

    def _child(self, parents: list[Arch]) -> Arch:
        if len(parents) >= 2 and self.rng.random() < self.crossover_prob:
            a, b = self.rng.choice(len(parents), size=2, replace=False)
            return self.space.crossover(parents[int(a)], parents[int(b)], self.rng)
        parent = parents[int(self.rng.integers(len(parents)))]
        return self.space.mutate(parent, self.rng, prob=self.mutation_prob)
