"""The hardware-tailored, two-stage search loop of HURRICANE, around any ask/tell strategy.

Zhang et al., "Fast Hardware-Aware Neural Architecture Search" (CVPRW 2020):

1. a generator keeps each device's hardware-friendly ops per slot (`search.tailor`);
2. stage one searches the last n - t slots with the first t fixed to a default: later
   layers matter more for accuracy, and the smaller space searches (and, for a
   supernet estimator, trains) faster;
3. stage two fixes the later slots found and searches the first t.

`t` defaults to the slots of the space's first two stages' worth, a third of the slots
(7 of mbv2's 21; the paper splits its 21-block space similarly and reports 30% less
supernet training time than searching everything at once). `one_stage` searches the
whole tailored space in one go, for comparison.

Departures: the paper runs SPOS evolution in each stage; here any registered strategy
runs, and every candidate is checked against the devices' latency predictors before it
is scored (strategies reject or repair over-budget archs themselves, given the
`Constraint`). An estimator that trains per space (a supernet) is told each stage's
space through an optional `prepare(space, ...)` method.

The loop checkpoints after every batch (strategy state, scores, stage) to a JSON file and
resumes from it exactly; `should_stop` cancels cleanly after the current batch.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spaces import Arch, Space

from .constraints import LatencyBudget
from .protocols import AccuracyEstimator

Progress = Callable[[float, str], None]
STATE_VERSION = 1


class SearchCancelled(Exception):
    """`should_stop` asked the search to stop; the checkpoint holds its state."""


@dataclass(frozen=True)
class SearchConfig:
    """How a search spends its estimator calls.

    Attributes:
        strategy: Registered strategy name (`search.strategies.list_strategies()`).
        evaluations: Estimator calls in all (both stages together).
        batch: Archs asked and scored at a time (FP-NAS picks its own when it can).
        split: `t`, the number of leading slots stage two searches; None is a third.
        stage1_share: Share of `evaluations` spent in stage one.
        seed: Seeds the strategies.
        strategy_options: Keyword hyper-parameters of the strategy.
    """

    strategy: str = "evolution"
    evaluations: int = 200
    batch: int = 16
    split: int | None = None
    stage1_share: float = 0.6
    seed: int = 0
    strategy_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.evaluations, int) or self.evaluations < 4:
            raise ValueError(f"evaluations must be an integer >= 4, got {self.evaluations!r}")
        if not isinstance(self.batch, int) or self.batch < 1:
            raise ValueError(f"batch must be a positive integer, got {self.batch!r}")
        if not 0.0 < self.stage1_share < 1.0:
            raise ValueError(f"stage1_share must be in (0, 1), got {self.stage1_share!r}")


@dataclass
class Evaluated:
    arch: str
    score: float
    stage: str


@dataclass
class StageResult:
    name: str
    slots: list[str]
    evaluations: int
    seconds: float
    best_arch: str
    best_score: float


@dataclass
class SearchOutcome:
    """What a search found, with everything a report needs."""

    space: Space
    best: Arch
    best_score: float
    latency_ms: dict[str, float]
    evaluated: list[Evaluated]
    stages: list[StageResult]
    pareto: list[dict[str, Any]]


def default_split(space: Space) -> int:
    return max(1, len(space.slots) // 3)


class _Checkpoint:
    """The search state as one JSON file, replaced atomically after every batch."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.state: dict[str, Any] = {}
        if path is not None and path.exists():
            data = json.loads(path.read_text())
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"checkpoint {path}: version {data.get('version')} is not "
                                 f"{STATE_VERSION}; remove it to start over")
            self.state = data

    def save(self) -> None:
        if self.path is None:
            return
        self.state["version"] = STATE_VERSION
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, self.path)


class _Runner:
    """Runs strategies over stages, sharing one score cache and one call budget."""

    def __init__(self, estimator: AccuracyEstimator, budget: LatencyBudget,
                 config: SearchConfig, *, progress: Progress | None,
                 should_stop: Callable[[], bool] | None, checkpoint: _Checkpoint) -> None:
        self.estimator = estimator
        self.budget = budget
        self.config = config
        self.progress = progress or (lambda fraction, message: None)
        self.should_stop = should_stop or (lambda: False)
        self.ckpt = checkpoint
        st = checkpoint.state
        self.scores: dict[str, float] = st.setdefault("scores", {})
        self.evaluated: list[dict[str, Any]] = st.setdefault("evaluated", [])
        self.stages: list[dict[str, Any]] = st.setdefault("stages", [])

    def run_stage(self, name: str, space: Space, calls: int, searched: Sequence[int], *,
                  incumbent: Arch | None = None) -> Arch:
        """Search `space` with `calls` estimator calls; return the best arch.

        `incumbent` (an arch of `space` already scored, stage one's result in stage two)
        wins if nothing the strategy finds beats it.
        """
        from .strategies import get_strategy

        done = next((s for s in self.stages if s["name"] == name), None)
        if done is not None:
            return space.decode(done["best_arch"])
        if hasattr(self.estimator, "prepare"):
            self.estimator.prepare(space, progress=self.progress, should_stop=self.should_stop)
        live = self.ckpt.state.get("live")
        resumed = live if live and live["stage"] == name else None
        # A resumed stage takes its saved hyper-parameters, not today's sizing of them to
        # the calls: one started before `budget_params` changed resumes as it began.
        strategy = get_strategy(
            self.config.strategy, space, seed=self.config.seed, constraint=self.budget,
            calls=None if resumed else calls,
            **{**(resumed["strategy"]["params"] if resumed else {}),
               **self.config.strategy_options})
        if resumed:
            strategy.load_state_dict(resumed["strategy"])
            used, asked, seconds = resumed["used"], resumed["asked"], resumed["seconds"]
        else:
            used, asked, seconds = 0, 0, 0.0
        start = time.monotonic() - seconds
        # Asks are capped so a converged strategy that only proposes known archs ends.
        while used < calls and asked < 5 * calls:
            if self.should_stop():
                raise SearchCancelled(f"search cancelled in {name} after {used} evaluations")
            n = min(self._batch(strategy), calls - used)
            archs = strategy.ask(n)
            if not archs:
                break  # the strategy has nothing new to propose (a small or converged space)
            asked += len(archs)
            texts = [space.encode(a) for a in archs]
            used += self._score(space, texts, name)
            strategy.tell(archs, np.array([self.scores[self._key(t, name)] for t in texts]))
            best_arch, best_score = strategy.best()
            self.ckpt.state["live"] = {"stage": name, "strategy": strategy.state_dict(),
                                       "used": used, "asked": asked,
                                       "seconds": time.monotonic() - start}
            self.ckpt.save()
            self.progress(self._fraction(name, used / calls),
                          f"{name}: {used}/{calls} evaluations, best {best_score:.4g}")
        found = strategy.best()
        if incumbent is not None:
            text = space.encode(incumbent)
            used += self._score(space, [text], name)
            known = self.scores[self._key(text, name)]
            if found is None or known > found[1]:
                found = (incumbent, known)
        if found is None:
            raise ValueError(f"{name}: strategy {self.config.strategy!r} proposed no arch")
        best_arch, best_score = found
        self.stages.append({
            "name": name, "slots": [space.slots[i].name for i in searched],
            "evaluations": used, "seconds": round(time.monotonic() - start, 3),
            "best_arch": space.encode(best_arch), "best_score": float(best_score)})
        self.ckpt.state["live"] = None
        self.ckpt.save()
        return best_arch

    def _key(self, text: str, stage: str) -> str:
        # An estimator retrained per stage (it has `prepare`) scores on another scale in
        # each stage, so its scores are cached per stage.
        return f"{stage}|{text}" if hasattr(self.estimator, "prepare") else text

    def _score(self, space: Space, texts: Sequence[str], stage: str) -> int:
        """Score the archs not scored yet; returns how many estimator calls that took."""
        new = [t for t in dict.fromkeys(texts) if self._key(t, stage) not in self.scores]
        if not new:
            return 0
        fresh = np.asarray(self.estimator.score([space.decode(t) for t in new]),
                           dtype=np.float64)
        if fresh.shape != (len(new),) or not np.all(np.isfinite(fresh)):
            raise ValueError("estimator returned non-finite or missing scores")
        for text, score in zip(new, fresh.tolist(), strict=True):
            self.scores[self._key(text, stage)] = score
            self.evaluated.append({"arch": text, "score": score, "stage": stage})
        return len(new)

    def _batch(self, strategy: Any) -> int:
        suggested = getattr(strategy, "suggested_batch", None)
        return int(suggested()) if callable(suggested) else self.config.batch

    def _fraction(self, stage: str, within: float) -> float:
        if stage == "stage2":
            return self.config.stage1_share + (1 - self.config.stage1_share) * within
        if stage == "stage1":
            return self.config.stage1_share * within
        return within


def two_stage(space: Space, estimator: AccuracyEstimator, budget: LatencyBudget,
              config: SearchConfig, *, progress: Progress | None = None,
              should_stop: Callable[[], bool] | None = None,
              checkpoint: Path | None = None) -> SearchOutcome:
    """HURRICANE's two-stage search of `space` (usually the tailored one) under `budget`.

    Stage one searches slots t..n-1 with slots 0..t-1 fixed to the space's default,
    stage two searches slots 0..t-1 with the rest fixed to stage one's result.
    """
    t = config.split if config.split is not None else default_split(space)
    if not 1 <= t < len(space.slots):
        raise ValueError(f"split must be in [1, {len(space.slots) - 1}], got {t}")
    budget.check_reachable(space)
    runner = _Runner(estimator, budget, config, progress=progress, should_stop=should_stop,
                     checkpoint=_Checkpoint(checkpoint))
    calls1 = max(2, round(config.evaluations * config.stage1_share))
    calls2 = max(2, config.evaluations - calls1)
    default = _feasible_default(space, budget, range(t))
    stage1_space = space.restrict({i: [default.ops[i]] for i in range(t)})
    a1 = runner.run_stage("stage1", stage1_space, calls1, range(t, len(space.slots)))
    stage2_space = space.restrict({i: [a1.ops[i]] for i in range(t, len(space.slots))})
    runner.run_stage("stage2", stage2_space, calls2, range(t), incumbent=a1)
    return _outcome(space, budget, runner)


def one_stage(space: Space, estimator: AccuracyEstimator, budget: LatencyBudget,
              config: SearchConfig, *, progress: Progress | None = None,
              should_stop: Callable[[], bool] | None = None,
              checkpoint: Path | None = None) -> SearchOutcome:
    """The whole space at once (the baseline two-stage search is compared with)."""
    budget.check_reachable(space)
    runner = _Runner(estimator, budget, config, progress=progress, should_stop=should_stop,
                     checkpoint=_Checkpoint(checkpoint))
    runner.run_stage("full", space, config.evaluations, range(len(space.slots)))
    return _outcome(space, budget, runner)


def _feasible_default(space: Space, budget: LatencyBudget, fixed: Sequence[int]) -> Arch:
    """The space's default, with the fixed slots made cheaper until a completion fits.

    Stage one fixes the leading slots; if the default ops there leave no room for any
    completion under the budget, those slots fall back to their cheapest ops.
    """
    from .constraints import fastest_arch

    default = space.default()
    fastest = fastest_arch(space, budget)
    probe = Arch(tuple(default.ops[i] if i in fixed else fastest.ops[i]
                       for i in range(len(space.slots))))
    if budget.ratio([probe])[0] <= 1.0:
        return default
    return Arch(tuple(fastest.ops[i] if i in fixed else default.ops[i]
                      for i in range(len(space.slots))))


def _outcome(space: Space, budget: LatencyBudget, runner: _Runner) -> SearchOutcome:
    evaluated = [Evaluated(e["arch"], e["score"], e["stage"]) for e in runner.evaluated]
    stages = [StageResult(**s) for s in runner.stages]
    final = stages[-1]
    best = space.decode(final.best_arch)
    archs = [space.decode(e.arch) for e in evaluated]
    lat = budget.latencies(archs)
    ratio = budget.ratio(archs)
    scores = np.array([e.score for e in evaluated])
    pareto = [
        {"arch": evaluated[i].arch, "score": float(scores[i]),
         "latency_ms": {name: float(v[i]) for name, v in lat.items()},
         "ratio": float(ratio[i]), "feasible": bool(ratio[i] <= 1.0)}
        for i in pareto_front(ratio, scores)
    ]
    best_lat = budget.latencies([best])
    return SearchOutcome(space=space, best=best, best_score=final.best_score,
                         latency_ms={k: float(v[0]) for k, v in best_lat.items()},
                         evaluated=evaluated, stages=stages, pareto=pareto)


def pareto_front(cost: np.ndarray, score: np.ndarray) -> list[int]:
    """Indices of the non-dominated points (lower cost, higher score), by rising cost."""
    order = np.lexsort((-score, cost))
    front, best = [], -np.inf
    for i in order:
        if score[i] > best:
            front.append(int(i))
            best = score[i]
    return front
