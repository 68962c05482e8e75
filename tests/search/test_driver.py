"""The hardware-tailored two-stage search on a real device predictor (nb201 on onnxruntime).

The predictor is the real pipeline at a size that takes seconds: the small nb201 space's
kit exported from models/, measured by the board runner on onnxruntime, a FOX-NAS
predictor fitted on the LUT and 12 whole archs (`search.local`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from latency import Predictor
from profilers.device import DeviceProfile
from search import local
from search.constraints import LatencyBudget, Target, UnreachableBudgetError, fastest_arch
from search.driver import SearchCancelled, SearchConfig, one_stage, pareto_front, two_stage
from search.estimators import get_estimator
from search.local import cache_dir, local_predictor
from search.strategies import list_strategies
from search.tailor import tailor
from spaces import Arch, Space, get_space

PARAMS = {"channels": 8, "cells": 1, "classes": 10}
DEVICE = DeviceProfile(name="cpu", backend="onnxruntime", resolution=16)


@pytest.fixture(scope="module")
def space() -> Space:
    return get_space("nb201", resolution=16, **PARAMS)


@pytest.fixture(scope="module")
def predictor(space: Space, tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    return local_predictor(space, DEVICE, tmp_path_factory.mktemp("cache"), archs=12)


@pytest.fixture(scope="module")
def budget(space: Space, predictor: Predictor) -> LatencyBudget:
    # The median of random archs: about half the space is feasible.
    sample = [space.sample(np.random.default_rng(i)) for i in range(64)]
    return LatencyBudget([Target("cpu", predictor,
                                 float(np.median(predictor.predict(sample))))])


def test_local_predictor_is_cached(space: Space, predictor: Predictor, tmp_path: Path) -> None:
    assert predictor.kind == "fox" and predictor.e2e_samples == 12
    ms = predictor.predict([space.default()])
    assert ms.shape == (1,) and 0 < ms[0] < 1000


def test_tflite_caches_are_keyed_on_the_exporters_graph_revision(
        space: Space, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tflite = DeviceProfile(name="edge", backend="tflite", resolution=16)
    before = {d.backend: cache_dir(tmp_path, space, d) for d in (DEVICE, tflite)}
    monkeypatch.setattr(local, "TFLITE_GRAPHS", local.TFLITE_GRAPHS + 1)
    assert cache_dir(tmp_path, space, tflite) != before["tflite"]
    assert cache_dir(tmp_path, space, DEVICE) == before["onnxruntime"]


@pytest.mark.parametrize("strategy", list_strategies())
def test_two_stage_finds_a_feasible_arch(space: Space, budget: LatencyBudget,
                                         strategy: str) -> None:
    estimator = get_estimator("params", space=space)
    config = SearchConfig(strategy=strategy, evaluations=24, batch=6, seed=1)
    out = two_stage(space, estimator, budget, config)
    assert [s.name for s in out.stages] == ["stage1", "stage2"]
    assert len(out.stages[0].slots) == len(space.slots) - 2  # t = 6 // 3 = 2 slots later
    assert budget.ratio([out.best])[0] <= 1.0
    assert out.latency_ms["cpu"] <= budget.targets[0].budget_ms
    # Stage two keeps stage one's later slots.
    best1 = space.decode(out.stages[0].best_arch)
    assert out.best.ops[2:] == best1.ops[2:]
    assert out.best_score >= out.stages[0].best_score
    ratios = [p["ratio"] for p in out.pareto]
    assert ratios == sorted(ratios)
    assert [p["score"] for p in out.pareto] == sorted(p["score"] for p in out.pareto)


def test_one_stage_and_the_score_cache(space: Space, budget: LatencyBudget) -> None:
    calls: list[int] = []
    params = get_estimator("params", space=space)

    class Counting:
        def score(self, archs: list[Arch]) -> np.ndarray:
            calls.append(len(archs))
            return params.score(archs)

        def describe(self) -> str:
            return params.describe()

    out = one_stage(space, Counting(), budget, SearchConfig(evaluations=20, batch=5))
    assert [s.name for s in out.stages] == ["full"]
    assert sum(calls) == len(out.evaluated) <= 20  # each arch is scored once
    assert len({e.arch for e in out.evaluated}) == len(out.evaluated)


def test_cancel_and_resume_gives_the_uninterrupted_result(space: Space, budget: LatencyBudget,
                                                          tmp_path: Path) -> None:
    estimator = get_estimator("params", space=space)
    config = SearchConfig(strategy="evolution", evaluations=30, batch=5, seed=3)
    whole = two_stage(space, estimator, budget, config)
    ckpt = tmp_path / "state.json"
    polls = iter(range(1000))
    with pytest.raises(SearchCancelled):
        two_stage(space, estimator, budget, config, checkpoint=ckpt,
                  should_stop=lambda: next(polls) >= 4)
    assert ckpt.exists()
    resumed = two_stage(space, estimator, budget, config, checkpoint=ckpt)
    assert resumed.best == whole.best
    assert [e.arch for e in resumed.evaluated] == [e.arch for e in whole.evaluated]


def test_a_stage_resumes_with_the_hyper_parameters_it_started_with(
        space: Space, budget: LatencyBudget, tmp_path: Path) -> None:
    """A checkpoint written before the population was sized to the calls (50) resumes as
    it began instead of failing on a hyper-parameter mismatch."""
    estimator = get_estimator("params", space=space)
    config = SearchConfig(strategy="evolution", evaluations=30, batch=5, seed=3)
    ckpt = tmp_path / "state.json"
    polls = iter(range(1000))
    with pytest.raises(SearchCancelled):
        two_stage(space, estimator, budget, config, checkpoint=ckpt,
                  should_stop=lambda: next(polls) >= 2)
    state = json.loads(ckpt.read_text())
    assert state["live"]["strategy"]["params"]["population"] == 6  # 18 stage-one calls / 3
    state["live"]["strategy"]["params"]["population"] = 50
    ckpt.write_text(json.dumps(state))
    resumed = two_stage(space, estimator, budget, config, checkpoint=ckpt)
    assert len(resumed.evaluated) <= 30 and resumed.best_score > 0


def test_unreachable_budget_names_the_fastest_latency(space: Space, predictor: Predictor) -> None:
    fastest = fastest_arch(space, LatencyBudget([Target("cpu", predictor, 1.0)]))
    ms = float(predictor.predict([fastest])[0])
    assert ms > 0
    tight = LatencyBudget([Target("cpu", predictor, ms * 0.5)])
    with pytest.raises(UnreachableBudgetError, match=r"fastest reachable latency is cpu: "):
        two_stage(space, get_estimator("params", space=space), tight, SearchConfig())


def test_multi_device_ratio_is_the_worst(space: Space, predictor: Predictor) -> None:
    archs = [space.sample(np.random.default_rng(i)) for i in range(8)]
    ms = predictor.predict(archs)
    both = LatencyBudget([Target("a", predictor, 2.0), Target("b", predictor, 1.0)])
    assert np.allclose(both.ratio(archs), ms / 1.0)
    with pytest.raises(ValueError, match="unique"):
        LatencyBudget([Target("a", predictor, 2.0), Target("a", predictor, 1.0)])
    with pytest.raises(ValueError, match="budget_ms"):
        Target("a", predictor, -1.0)


def test_margin_checks_the_budget_above_the_prediction(space: Space, predictor: Predictor,
                                                       budget: LatencyBudget) -> None:
    archs = [space.sample(np.random.default_rng(i)) for i in range(32)]
    ms, std = predictor.predict(archs), predictor.predict_std(archs)
    assert np.all(std > 0)
    limit = budget.targets[0].budget_ms
    guarded = LatencyBudget([Target("cpu", predictor, limit, sigmas=2.0)])
    assert np.allclose(guarded.ratio(archs), (ms + 2.0 * std) / limit)
    assert np.allclose(guarded.latencies(archs)["cpu"], ms)  # reports stay the prediction
    estimator = get_estimator("params", space=space)
    config = SearchConfig(strategy="evolution", evaluations=24, batch=6, seed=1)
    out = two_stage(space, estimator, guarded, config)
    best_ms, best_std = predictor.predict([out.best])[0], predictor.predict_std([out.best])[0]
    assert best_ms + 2.0 * best_std <= limit
    assert all(p["feasible"] == (p["ratio"] <= 1.0) for p in out.pareto)
    # The unreachable-budget error names the fastest latency with and without the margin.
    fastest = fastest_arch(space, guarded)
    fast_ms = float(predictor.predict([fastest])[0])
    tight = LatencyBudget([Target("cpu", predictor, fast_ms * 1.001, sigmas=3.0)])
    with pytest.raises(UnreachableBudgetError, match=r"ms with the 3-sigma margin"):
        tight.check_reachable(space)
    with pytest.raises(ValueError, match="sigmas must be a number in"):
        Target("cpu", predictor, 1.0, sigmas=-1.0)


def test_tailoring_keeps_cheap_and_capable_ops(space: Space, budget: LatencyBudget) -> None:
    estimator = get_estimator("params", space=space)
    result = tailor(space, estimator, budget, keep=3)
    for i, kept in enumerate(result.kept):
        choices = space.slots[i].choices
        assert 2 <= len(kept) <= 3
        assert choices[int(np.argmin(result.cost[i, :len(choices)]))] in kept
    # The op with the most parameters (3x3 conv) is kept wherever it is allowed: nothing
    # dominates it on capacity.
    assert all("nor_conv_3x3" in kept for kept in result.kept)
    assert result.summary()[0]["kept"][0].keys() == {"op", "capacity", "cost"}
    with pytest.raises(ValueError, match="keep"):
        tailor(space, estimator, budget, keep=1)


def test_pareto_front() -> None:
    cost = np.array([1.0, 2.0, 2.0, 3.0, 0.5])
    score = np.array([1.0, 3.0, 2.0, 2.5, 0.2])
    assert pareto_front(cost, score) == [4, 0, 1]
