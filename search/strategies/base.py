"""The ask/tell strategy ABC, its resumable state, and the strategy registry.

A strategy proposes architectures (`ask`) and learns from their scores (`tell`); a driver
runs the loop and calls the estimators (CONVENTIONS: strategies never call estimators). The
shape is Optuna's `BaseSampler` and Ray Tune's `Searcher`; the rules a strategy applies to
architectures (sampling, mutation, crossover, index form) are always the space's.

Contract shared by every strategy:

- `ask(n)` returns up to `n` new archs (never asked before by this strategy), all within the
  constraint (`constraint.ratio(archs) <= 1`). Over-budget and already-asked proposals are
  rejected and proposed again. If `max_tries` proposals in a row are all over budget,
  `InfeasibleBudgetError` is raised with the smallest ratio seen. If they are all
  rejected and at least one was an already-asked arch, the strategy has exhausted what it
  can reach (a small space, or a converged distribution) and returns fewer than `n`,
  possibly none: that is the only end state.
- `tell(archs, scores)` takes scores (higher is better) of archs this strategy asked and
  has not been told yet, in any order and any subset; external archs are refused.
- `state_dict()` is JSON-serialisable (`StrategyState`); `load_state_dict` on a fresh
  strategy built with the same arguments continues exactly as the original would.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from search.protocols import Constraint
from spaces import Arch, Space

STATE_SCHEMA_VERSION = 1


class InfeasibleBudgetError(ValueError):
    """No proposal met the constraint within the allowed number of tries.

    Attributes:
        tries: Proposals in a row that were all over budget.
        smallest_ratio: The smallest cost/budget ratio among them.
    """

    def __init__(self, strategy: str, tries: int, smallest_ratio: float) -> None:
        self.tries = tries
        self.smallest_ratio = smallest_ratio
        super().__init__(
            f"strategy {strategy!r}: {tries} proposals in a row were over budget "
            f"(smallest cost/budget ratio seen: {smallest_ratio:.4g}, 1 is the budget); "
            "raise the budget or restrict the space to cheaper ops"
        )


class StrategyState(BaseModel):
    """A strategy's whole state, as `state_dict` returns it (archs in index form)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = STATE_SCHEMA_VERSION
    strategy: str
    space: str
    num_choices: list[int]
    params: dict[str, Any]
    rng: dict[str, Any]
    history: list[list[int]]
    scores: list[float]
    pending: list[list[int]]
    extra: dict[str, Any]


def check_int(name: str, value: object, *, low: int, high: int | None = None) -> int:
    """`value` if it is an int in [low, high], else a `ValueError` naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


def check_float(name: str, value: object, *, low: float, high: float | None = None,
                low_open: bool = False) -> float:
    """`value` as a float in [low, high] ((low, high] if `low_open`), else a `ValueError`."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    too_low = v <= low if low_open else v < low
    if not math.isfinite(v) or too_low or (high is not None and v > high):
        if high is not None:
            bound = f"in {'(' if low_open else '['}{low}, {high}]"
        else:
            bound = f"{'>' if low_open else '>='} {low}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return v


class Strategy(ABC):
    """An ask/tell search strategy over one space, seeded and resumable.

    Args:
        space: The space to search; all rules on archs are its own.
        seed: Seeds the strategy's only random generator.
        constraint: Hardware budget; every asked arch has `ratio <= 1`. None: no budget.
        max_tries: Proposals in a row that may be rejected before `ask` gives up.

    Subclasses set `name`, implement `_ask`, and may extend `_tell`, `params`,
    `_extra_state`/`_load_extra_state`, `_on_known` and `_on_rejected`.
    """

    name: ClassVar[str]

    def __init__(self, space: Space, *, seed: int, constraint: Constraint | None = None,
                 max_tries: int = 1000) -> None:
        if not isinstance(space, Space):
            raise ValueError(f"space must be a Space, got {type(space).__name__}")
        if constraint is not None and not callable(getattr(constraint, "ratio", None)):
            raise ValueError("constraint must have a ratio(archs) method (search.protocols)")
        self.space = space
        self.seed = check_int("seed", seed, low=0)
        self.constraint = constraint
        self.max_tries = check_int("max_tries", max_tries, low=1)
        self.rng = np.random.default_rng(self.seed)
        self._history: list[Arch] = []
        self._scores: list[float] = []
        self._known: dict[Arch, float] = {}
        self._pending: dict[Arch, None] = {}

    # --- hooks for subclasses ---------------------------------------------------------

    @classmethod
    def budget_params(cls, calls: int, given: Mapping[str, Any]) -> dict[str, Any]:
        """Hyper-parameters scaled to a search of `calls` estimator calls, for the ones not
        in `given` (the caller's own, which win). Defaults sized for long searches (SPOS's
        population of 50) would otherwise spend a short one before the strategy starts."""
        return {}

    @property
    def params(self) -> dict[str, Any]:
        """The hyper-parameters (numbers and strings), as stored in the state."""
        return {"max_tries": self.max_tries}

    @abstractmethod
    def _ask(self, n: int) -> list[Arch]:
        """Up to `n` new feasible archs, usually `self._collect(n, propose)`."""

    def _tell(self, archs: list[Arch], scores: np.ndarray) -> None:  # noqa: B027
        """Learn from validated scores (already appended to the history)."""

    def _on_known(self, arch: Arch, score: float) -> None:  # noqa: B027
        """A proposal that was already told: its score is known without an estimator call."""

    def _on_rejected(self, arch: Arch, ratio: float) -> None:  # noqa: B027
        """A proposal over budget (`ratio > 1`), rejected before it was ever asked."""

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:  # noqa: B027
        """Restore what `_extra_state` saved."""

    # --- the public API ---------------------------------------------------------------

    def ask(self, n: int) -> list[Arch]:
        """`n` new feasible archs to score (fewer only when the strategy is exhausted).

        Raises:
            InfeasibleBudgetError: `max_tries` proposals in a row were over budget.
        """
        n = check_int("n", n, low=0)
        archs = self._ask(n) if n else []
        self._pending.update(dict.fromkeys(archs))
        return archs

    def tell(self, archs: Sequence[Arch], scores: Sequence[float] | np.ndarray) -> None:
        """Record the scores (higher is better) of archs this strategy asked.

        Raises:
            ValueError: lengths differ, a score is NaN or infinite, or an arch was not asked
                (or was already told); the message names the offending entry.
        """
        archs = list(archs)
        values = np.asarray(scores, dtype=np.float64)
        if values.ndim != 1 or len(values) != len(archs):
            raise ValueError(f"scores must be a 1-D sequence of {len(archs)} numbers "
                             f"(one per arch), got shape {values.shape}")
        seen: set[Arch] = set()
        for i, (arch, score) in enumerate(zip(archs, values.tolist(), strict=True)):
            if not math.isfinite(score):
                raise ValueError(f"scores[{i}] is {score}: scores must be finite")
            if arch not in self._pending or arch in seen:
                raise ValueError(f"archs[{i}] was not asked by this strategy or was already "
                                 f"told: {arch!r}")
            seen.add(arch)
        for arch, score in zip(archs, values.tolist(), strict=True):
            del self._pending[arch]
            self._history.append(arch)
            self._scores.append(score)
            self._known[arch] = score
        if archs:
            self._tell(archs, values)

    def best(self) -> tuple[Arch, float] | None:
        """The best arch told so far and its score (the first one on ties), or None."""
        if not self._scores:
            return None
        i = int(np.argmax(self._scores))
        return self._history[i], self._scores[i]

    @property
    def history(self) -> list[tuple[Arch, float]]:
        """Every (arch, score) told, in order."""
        return list(zip(self._history, self._scores, strict=True))

    @property
    def pending(self) -> list[Arch]:
        """Archs asked and not told yet, in the order they were asked."""
        return list(self._pending)

    def state_dict(self) -> dict[str, Any]:
        """The whole state as JSON-ready data (`StrategyState`)."""
        def rows(archs: list[Arch]) -> list[list[int]]:
            return self.space.to_indices(archs).tolist() if archs else []

        return StrategyState(
            strategy=self.name, space=self.space.name, num_choices=list(self.space.num_choices),
            params=self.params, rng=self.rng.bit_generator.state,
            history=rows(self._history), scores=list(self._scores),
            pending=rows(list(self._pending)), extra=self._extra_state(),
        ).model_dump(mode="json")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state_dict()` output of a strategy built with the same arguments.

        Raises:
            ValueError: the state is malformed or belongs to another strategy, space or
                hyper-parameters (the message names the field).
        """
        st = StrategyState.model_validate(state)
        if st.strategy != self.name:
            raise ValueError(f"state.strategy is {st.strategy!r}, this strategy is {self.name!r}")
        if st.space != self.space.name or st.num_choices != list(self.space.num_choices):
            raise ValueError(f"state.space: the state is for space {st.space!r} with choices "
                             f"{st.num_choices}, not this {self.space.name!r} space")
        for key, value in self.params.items():
            if st.params.get(key) != value:
                raise ValueError(f"state.params.{key} is {st.params.get(key)!r}, "
                                 f"this strategy has {value!r}")
        if len(st.scores) != len(st.history):
            raise ValueError("state.scores must have one score per state.history row")
        self.rng.bit_generator.state = st.rng
        self._history = [self.space.from_indices(row) for row in st.history]
        self._scores = [float(s) for s in st.scores]
        self._known = dict(zip(self._history, self._scores, strict=True))
        self._pending = dict.fromkeys(self.space.from_indices(row) for row in st.pending)
        self._load_extra_state(st.extra)

    # --- helpers for subclasses -------------------------------------------------------

    def _collect(self, n: int, propose: Callable[[], Arch]) -> list[Arch]:
        """Up to `n` new, feasible archs from `propose`, checked against the constraint in chunks.

        Proposals already asked count as rejected tries (`_on_known` sees those already
        told); over-budget ones go to `_on_rejected`.
        """
        out: list[Arch] = []
        taken: set[Arch] = set()
        over: dict[Arch, float] = {}
        streak, dup_in_streak, smallest = 0, False, math.inf
        while len(out) < n:
            want = n - len(out)
            size = want if self.constraint is None else max(2 * want, 8)
            chunk: list[Arch] = []
            while len(chunk) < size and streak + len(chunk) < self.max_tries:
                arch = propose()
                if arch in over:
                    streak += 1
                    self._on_rejected(arch, over[arch])
                elif arch in self._pending or arch in self._known or arch in taken:
                    streak += 1
                    dup_in_streak = True
                    if arch in self._known:
                        self._on_known(arch, self._known[arch])
                else:
                    chunk.append(arch)
                    taken.add(arch)
            ratios = self._ratios(chunk)
            for arch, ratio in zip(chunk, ratios, strict=True):
                if len(out) == n:
                    break
                if ratio <= 1.0:
                    out.append(arch)
                    streak, dup_in_streak = 0, False
                else:
                    smallest = min(smallest, ratio)
                    streak += 1
                    over[arch] = ratio
                    self._on_rejected(arch, ratio)
            if streak >= self.max_tries and len(out) < n:
                if dup_in_streak:
                    break
                raise InfeasibleBudgetError(self.name, streak, smallest)
        return out

    def _ratios(self, archs: list[Arch]) -> list[float]:
        if self.constraint is None or not archs:
            return [0.0] * len(archs)
        ratios = np.asarray(self.constraint.ratio(archs), dtype=np.float64)
        if ratios.shape != (len(archs),) or np.isnan(ratios).any():
            raise ValueError(f"constraint.ratio must return {len(archs)} numbers (no NaN), "
                             f"got shape {ratios.shape}")
        return ratios.tolist()


# --- registry -------------------------------------------------------------------------

_STRATEGIES: dict[str, type[Strategy]] = {}

T = TypeVar("T", bound=type[Strategy])


class UnknownStrategyError(KeyError):
    """No strategy is registered under that name."""

    def __str__(self) -> str:
        return str(self.args[0])


def register_strategy(name: str) -> Callable[[T], T]:
    """Class decorator: make a `Strategy` subclass available as `get_strategy(name, ...)`."""

    def wrap(cls: T) -> T:
        if name in _STRATEGIES:
            raise ValueError(f"strategy {name!r} is registered twice")
        cls.name = name
        _STRATEGIES[name] = cls
        return cls

    return wrap


def list_strategies() -> list[str]:
    """Names of the registered strategies, sorted."""
    return sorted(_STRATEGIES)


def strategy_params(name: str) -> dict[str, object]:
    """The keyword hyper-parameters `get_strategy(name, ...)` accepts, with their defaults."""
    cls = _lookup(name)
    sig = inspect.signature(cls.__init__)
    return {p.name: p.default for p in sig.parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.name not in ("seed", "constraint")}


def get_strategy(name: str, space: Space, *, seed: int = 0,
                 constraint: Constraint | None = None, calls: int | None = None,
                 **params: Any) -> Strategy:
    """Build the strategy registered as `name` over `space`.

    `calls`, the estimator calls the search will make, sizes the hyper-parameters not in
    `params` that depend on the length of the search (`Strategy.budget_params`); None
    keeps the strategy's defaults.

    Raises:
        UnknownStrategyError: no such strategy (the message lists the known ones).
        ValueError: a hyper-parameter the strategy does not take, or a bad value (named).

    Example:
        >>> from spaces import get_space
        >>> s = get_strategy("random", get_space("nb201"), seed=0)
        >>> len(s.ask(3))
        3
    """
    cls = _lookup(name)
    allowed = strategy_params(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"strategy {name!r} has no parameter {unknown[0]!r} "
                         f"(it takes: {', '.join(allowed)})")
    if calls is not None:
        params = {**cls.budget_params(check_int("calls", calls, low=1), params), **params}
    return cls(space, seed=seed, constraint=constraint, **params)


def _lookup(name: str) -> type[Strategy]:
    try:
        return _STRATEGIES[name]
    except KeyError:
        raise UnknownStrategyError(
            f"unknown strategy {name!r} (known: {', '.join(list_strategies())})"
        ) from None
