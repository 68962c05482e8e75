"""Ask/tell search strategies, registered by name.

`random`, `evolution` (SPOS/once-for-all), `annealing` (FOX-NAS), `parsec` (PARSEC) and
`fpnas` (FP-NAS). numpy and pydantic only: importing this never imports torch.

Example:
    >>> from spaces import get_space
    >>> from search.strategies import get_strategy, list_strategies
    >>> list_strategies()
    ['annealing', 'evolution', 'fpnas', 'parsec', 'random']
    >>> s = get_strategy("evolution", get_space("nb201"), seed=0, population=4, parents=2)
    >>> archs = s.ask(4)
    >>> s.tell(archs, [0.1, 0.2, 0.3, 0.4])
    >>> s.best()[1]
    0.4
"""

from __future__ import annotations

from . import annealing, evolution, fpnas, parsec, random
from .base import (
    InfeasibleBudgetError,
    Strategy,
    StrategyState,
    UnknownStrategyError,
    get_strategy,
    list_strategies,
    register_strategy,
    strategy_params,
)

__all__ = [
    "InfeasibleBudgetError",
    "Strategy",
    "StrategyState",
    "UnknownStrategyError",
    "annealing",
    "evolution",
    "fpnas",
    "get_strategy",
    "list_strategies",
    "parsec",
    "random",
    "register_strategy",
    "strategy_params",
]
