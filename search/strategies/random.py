"""Random search: uniform over the space, over-budget archs rejected.

The baseline every other strategy is measured against (Li & Talwalkar, "Random Search and
Reproducibility for Neural Architecture Search", UAI 2019). Departure: archs already asked
are drawn again rather than re-scored, so every estimator call sees a new arch.
"""

from __future__ import annotations

from spaces import Arch

from .base import Strategy, register_strategy


@register_strategy("random")
class RandomSearch(Strategy):
    """Uniform samples from `space.sample`, rejected while over budget or already asked.

    Example:
        >>> from spaces import get_space
        >>> s = RandomSearch(get_space("nb201"), seed=0)
        >>> archs = s.ask(4)
        >>> s.tell(archs, [0.1, 0.4, 0.2, 0.3])
        >>> s.best()[1]
        0.4
    """

    def _ask(self, n: int) -> list[Arch]:
        return self._collect(n, lambda: self.space.sample(self.rng))
