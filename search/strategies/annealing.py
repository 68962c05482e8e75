"""Simulated annealing under a latency budget, as FOX-NAS searches.

Liu et al., "FOX-NAS: Fast, On-device and Explainable Neural Architecture Search" (ICCV
Workshops 2021, repo great8nctu/FOX-NAS): a local search from a random arch whose moves
change a few variables, over-budget moves resampled, losses accepted only sometimes, and a
restart after many rejections in a row.

Here: a move is `space.mutate(current, prob=move_prob)` (each slot changes with that
probability, at least one does), proposals over budget are rejected inside `ask`, and the
acceptance rule is Metropolis' with geometric cooling: a move that loses `d` is accepted
with probability `exp(-d / T)`, `T = t0 * spread * cooling ** step`, where `spread` is the
standard deviation of all scores told so far (so `t0` is unit-free) and `step` counts moves
since the last (re)start. After `restart_after` rejections in a row the chain restarts from
a random feasible arch with the temperature reset.

Departures: FOX-NAS's released code has its Metropolis rule commented out (it accepts only
improvements, plus losses after a rejection count); this is proper annealing. Its moves
nudge ordinal variables by one step; here a move resamples ops, the space's own rule. With
`ask(n > 1)` the `n` moves all start from the current arch and `tell` applies Metropolis to
them in order (a batched chain); `ask(1)` is the sequential chain. A move that lands on an
arch already told is judged at once with its known score, costing no estimator call.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from search.protocols import Constraint
from spaces import Arch, Space

from .base import Strategy, check_float, check_int, register_strategy


@register_strategy("annealing")
class AnnealingSearch(Strategy):
    """FOX-NAS-style simulated annealing with Metropolis acceptance and restarts.

    Args:
        space: The space to search.
        seed: Seeds the strategy.
        constraint: Hardware budget (None: no budget).
        move_prob: Per-slot probability that a move changes the slot (at least one changes).
        t0: Initial temperature, in units of the observed score spread.
        cooling: Geometric cooling factor per move, in (0, 1].
        restart_after: Rejections in a row before restarting from a random arch.
        max_tries: Rejected proposals in a row before `ask` gives up.
    """

    def __init__(self, space: Space, *, seed: int, constraint: Constraint | None = None,
                 move_prob: float = 0.05, t0: float = 0.5, cooling: float = 0.97,
                 restart_after: int = 40, max_tries: int = 1000) -> None:
        super().__init__(space, seed=seed, constraint=constraint, max_tries=max_tries)
        self.move_prob = check_float("move_prob", move_prob, low=0.0, high=1.0)
        self.t0 = check_float("t0", t0, low=0.0)
        self.cooling = check_float("cooling", cooling, low=0.0, high=1.0, low_open=True)
        self.restart_after = check_int("restart_after", restart_after, low=1)
        self._current: Arch | None = None
        self._current_score = 0.0
        self._step = 0
        self._rejections = 0
        self.restarts = 0

    @property
    def params(self) -> dict[str, Any]:
        return {**super().params, "move_prob": self.move_prob, "t0": self.t0,
                "cooling": self.cooling, "restart_after": self.restart_after}

    @property
    def current(self) -> tuple[Arch, float] | None:
        """The chain's current arch and its score (None before the first tell or a restart)."""
        return None if self._current is None else (self._current, self._current_score)

    def temperature(self) -> float:
        """The current Metropolis temperature (0 until two scores give a spread)."""
        spread = float(np.std(self._scores)) if len(self._scores) >= 2 else 0.0
        return self.t0 * spread * self.cooling ** self._step

    def _ask(self, n: int) -> list[Arch]:
        return self._collect(n, self._propose)

    def _propose(self) -> Arch:
        if self._current is None or max(self.space.num_choices) < 2:
            return self.space.sample(self.rng)
        return self.space.mutate(self._current, self.rng, prob=self.move_prob)

    def _tell(self, archs: list[Arch], scores: np.ndarray) -> None:
        for arch, score in zip(archs, scores.tolist(), strict=True):
            self._move(arch, score)

    def _on_known(self, arch: Arch, score: float) -> None:
        self._move(arch, score)

    def _move(self, arch: Arch, score: float) -> None:
        if self._current is None:
            accept = True
        else:
            loss = self._current_score - score
            temp = self.temperature()
            accept = loss <= 0 or (temp > 0 and self.rng.random() < math.exp(-loss / temp))
        self._step += 1
        if accept:
            self._current, self._current_score, self._rejections = arch, score, 0
            return
        self._rejections += 1
        if self._rejections >= self.restart_after:
            self._current, self._step, self._rejections = None, 0, 0
            self.restarts += 1

    def _extra_state(self) -> dict[str, Any]:
        current = (None if self._current is None
                   else self.space.to_indices([self._current])[0].tolist())
        return {"current": current, "current_score": self._current_score, "step": self._step,
                "rejections": self._rejections, "restarts": self.restarts}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        try:
            current = extra["current"]
            self._current = None if current is None else self.space.from_indices(current)
            self._current_score = float(extra["current_score"])
            self._step = int(extra["step"])
            self._rejections = int(extra["rejections"])
            self.restarts = int(extra["restarts"])
        except (KeyError, TypeError) as err:
            raise ValueError(f"state.extra is not an annealing state: {err}") from None
