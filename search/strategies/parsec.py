"""PARSEC: a learned categorical distribution per slot, updated by importance-weighted REINFORCE.

Casale et al., "Probabilistic Neural Architecture Search" (2019). Each step samples K
archs (K = 16 in the paper) from P(A | alpha), the driver scores them, and alpha follows
`sum_k w_k grad log P(A_k | alpha)` with self-normalised weights. The estimator, the
baseline, the buffering of samples and the optional cost term are described in
`search.strategies.categorical`.

Departures: weights come from the driver's scores (standardised, softmax with a
temperature) rather than from the validation likelihood under shared weights; the
distribution is truncated to the feasible archs by rejection, and the gradient ignores the
truncation's normaliser; samples that repeat an arch already asked are drawn again for
scoring (an already-told one still counts in the update with its known score).
"""

from __future__ import annotations

from typing import Any

from search.protocols import Constraint
from spaces import Space

from .base import check_int, register_strategy
from .categorical import CategoricalStrategy


@register_strategy("parsec")
class ParsecSearch(CategoricalStrategy):
    """PARSEC with a fixed number of samples per update.

    Args:
        space: The space to search.
        seed: Seeds the strategy.
        constraint: Hardware budget (None: no budget).
        samples: K, told archs per update.
        lr: Step size on the logits.
        temperature: Softmax temperature of the importance weights over standardised scores.
        optimizer: "adam" or "sgd".
        cost_weight: Weight of the expected-cost term (0, the paper's choice: none).
        max_tries: Rejected proposals in a row before `ask` gives up.

    Example:
        >>> from spaces import get_space
        >>> s = ParsecSearch(get_space("nb201"), seed=0, samples=4)
        >>> archs = s.ask(s.suggested_batch())
        >>> s.tell(archs, [1.0, 2.0, 3.0, 4.0])
        >>> s.updates
        1
    """

    def __init__(self, space: Space, *, seed: int, constraint: Constraint | None = None,
                 samples: int = 16, lr: float = 0.2, temperature: float = 1.0,
                 optimizer: str = "adam", cost_weight: float = 0.0,
                 max_tries: int = 1000) -> None:
        super().__init__(space, seed=seed, constraint=constraint, lr=lr,
                         temperature=temperature, optimizer=optimizer,
                         cost_weight=cost_weight, max_tries=max_tries)
        self.samples = check_int("samples", samples, low=2)

    @property
    def params(self) -> dict[str, Any]:
        return {**super().params, "samples": self.samples}

    def batch_size(self) -> int:
        return self.samples
