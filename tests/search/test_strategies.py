"""Ask/tell strategies: reproducible, resumable, always within budget, better than random."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from search.strategies import (
    InfeasibleBudgetError,
    Strategy,
    UnknownStrategyError,
    get_strategy,
    list_strategies,
    strategy_params,
)
from search.strategies.fpnas import FPNASSearch
from spaces import Arch, Space, get_space
from tests.conftest import small_space
from tests.search.synthetic import LinearCost, LinearScore, run

ROOT = Path(__file__).resolve().parents[2]
# Small enough that every strategy updates or breeds within a few rounds.
FAST = {"evolution": {"population": 8, "parents": 3}, "parsec": {"samples": 6},
        "fpnas": {"switch_after": 12, "k_max": 8}}


def make(name: str, space: Space, seed: int, constraint: LinearCost | None) -> Strategy:
    return get_strategy(name, space, seed=seed, constraint=constraint, **FAST.get(name, {}))


def rounds(strategy: Strategy, objective: LinearScore, count: int, n: int = 6) -> list[Arch]:
    asked: list[Arch] = []
    for _ in range(count):
        archs = strategy.ask(n)
        strategy.tell(archs, objective.score(archs))
        asked.extend(archs)
    return asked


class Never:
    """A budget nothing meets: every arch costs twice the budget."""

    def ratio(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.full(len(archs), 2.0)


# --- registry ---------------------------------------------------------------------------


def test_registry_lists_the_five_strategies() -> None:
    assert list_strategies() == ["annealing", "evolution", "fpnas", "parsec", "random"]
    assert "population" in strategy_params("evolution")
    assert "seed" not in strategy_params("random")


def test_unknown_strategy_and_parameter_are_named() -> None:
    space = small_space("nb201")
    with pytest.raises(UnknownStrategyError, match=r"unknown strategy 'bayes'.*annealing"):
        get_strategy("bayes", space)
    with pytest.raises(ValueError, match="no parameter 'popsize'"):
        get_strategy("evolution", space, popsize=3)


@pytest.mark.parametrize(("calls", "given", "want"), [
    (40, {}, {"population": 13, "parents": 2}),
    (300, {}, {"population": 50, "parents": 10}),
    (4, {}, {"population": 2, "parents": 2}),
    (40, {"population": 30}, {"population": 30, "parents": 6}),
    (40, {"parents": 3}, {"population": 13, "parents": 3}),
])
def test_evolution_sizes_its_first_generation_to_the_calls(
        calls: int, given: dict[str, int], want: dict[str, int]) -> None:
    strategy = get_strategy("evolution", small_space("mbv2"), calls=calls, **given)
    assert {k: strategy.params[k] for k in want} == want


def test_fpnas_leaves_its_coarse_phase_within_the_calls() -> None:
    space = small_space("mbv2")
    assert get_strategy("fpnas", space, calls=40).params["switch_after"] == 20
    assert get_strategy("fpnas", space, calls=1000).params["switch_after"] == 100
    assert get_strategy("fpnas", space, calls=40, switch_after=5).params["switch_after"] == 5
    assert get_strategy("fpnas", space).params["switch_after"] == 100  # no calls: defaults
    with pytest.raises(ValueError, match="calls"):
        get_strategy("fpnas", space, calls=0)


def test_a_short_evolution_breeds_after_its_first_generation() -> None:
    """40 calls with SPOS's 50 random archs first would be random search throughout."""
    space = small_space("mbv2")
    objective = LinearScore(space, seed=1)
    strategy = get_strategy("evolution", space, seed=0, calls=40)
    first = strategy.ask(13)
    strategy.tell(first, objective.score(first))
    parents = [a for a, _ in sorted(strategy.history, key=lambda t: -t[1])[:2]]
    children = strategy.ask(20)
    # A child takes each slot from a parent except where mutated (probability 0.1).
    inherited = [max(np.mean([c == p for c, p in zip(child.ops, parent.ops, strict=True)])
                     for parent in parents) for child in children]
    assert np.mean(inherited) > 0.6
    rand = get_strategy("random", space, seed=0).ask(20)
    assert np.mean([max(np.mean([c == p for c, p in zip(a.ops, parent.ops, strict=True)])
                        for parent in parents) for a in rand]) < np.mean(inherited)


@pytest.mark.parametrize(("name", "params", "field"), [
    ("random", {"max_tries": 0}, "max_tries"),
    ("evolution", {"population": 4, "parents": 5}, "parents"),
    ("evolution", {"mutation_prob": 1.5}, "mutation_prob"),
    ("annealing", {"cooling": 0.0}, "cooling"),
    ("annealing", {"restart_after": 0}, "restart_after"),
    ("parsec", {"samples": 1}, "samples"),
    ("parsec", {"optimizer": "rmsprop"}, "optimizer"),
    ("fpnas", {"k_min": 8, "k_max": 4}, "k_max"),
    ("fpnas", {"share": "block"}, "share"),
    ("fpnas", {"lr": float("nan")}, "lr"),
])
def test_bad_hyper_parameters_are_named(name: str, params: dict[str, object],
                                        field: str) -> None:
    with pytest.raises(ValueError, match=field):
        get_strategy(name, small_space("nb201"), **params)


# --- the contract, for every registered strategy --------------------------------------------


@pytest.mark.parametrize("name", list_strategies())
@pytest.mark.parametrize("space_name", ["mbv2", "nb201"])
def test_same_seed_same_sequence(name: str, space_name: str) -> None:
    space = small_space(space_name)
    cost = LinearCost(space, seed=3)
    runs = [rounds(make(name, space, 7, cost), LinearScore(space, seed=3, cost=cost), 5)
            for _ in range(2)]
    assert runs[0] == runs[1]
    other = rounds(make(name, space, 8, cost), LinearScore(space, seed=3, cost=cost), 5)
    assert other != runs[0]


@pytest.mark.parametrize("name", list_strategies())
@pytest.mark.parametrize("space_name", ["mbv2", "nb201"])
def test_resume_continues_exactly(name: str, space_name: str) -> None:
    space = small_space(space_name)
    cost = LinearCost(space, seed=1)
    objective = LinearScore(space, seed=1, cost=cost)

    def play(strategy: Strategy, *, stop: bool) -> tuple[Strategy, list[Arch]]:
        asked = rounds(strategy, objective, 2)
        pending = strategy.ask(3)  # asked, not told when the run stops
        if stop:
            saved = json.loads(json.dumps(strategy.state_dict()))
            strategy = make(name, space, 0, cost)
            strategy.load_state_dict(saved)
            assert strategy.pending == pending
        strategy.tell(pending, objective.score(pending))
        return strategy, asked + pending + rounds(strategy, objective, 3)

    whole, expected = play(make(name, space, 0, cost), stop=False)
    resumed, got = play(make(name, space, 0, cost), stop=True)
    assert got == expected
    assert resumed.state_dict() == whole.state_dict()
    assert resumed.best() == whole.best()


@pytest.mark.parametrize("name", list_strategies())
def test_asked_archs_are_new_and_within_budget(name: str) -> None:
    space = small_space("mbv2")
    cost = LinearCost(space, seed=2, quantile=0.1)
    strategy = make(name, space, 2, cost)
    asked = rounds(strategy, LinearScore(space, seed=2, cost=cost), 8)
    assert len(asked) == 48 == len(set(asked))
    assert np.all(cost.ratio(asked) <= 1.0)
    assert [a for a, _ in strategy.history] == asked
    assert strategy.best()[1] == max(s for _, s in strategy.history)


@pytest.mark.parametrize("name", list_strategies())
def test_impossible_budget_raises_with_tries_and_ratio(name: str) -> None:
    strategy = get_strategy(name, small_space("mbv2"), seed=0, constraint=Never(), max_tries=50)
    with pytest.raises(InfeasibleBudgetError, match=r"50 proposals.*ratio seen: 2") as err:
        strategy.ask(4)
    assert isinstance(err.value, ValueError)
    assert err.value.smallest_ratio == 2.0


@pytest.mark.parametrize("name", list_strategies())
def test_exhausted_space_returns_fewer(name: str) -> None:
    base = small_space("nb201")
    space = base.restrict({i: [base.slots[i].choices[0]] for i in range(1, 6)})  # 5 archs
    strategy = get_strategy(name, space, seed=0, max_tries=200)
    archs = strategy.ask(8)
    assert sorted(space.to_indices(archs)[:, 0].tolist()) == [0, 1, 2, 3, 4]
    strategy.tell(archs, np.arange(5.0))
    assert strategy.ask(3) == []
    assert strategy.best() == (archs[4], 4.0)


@pytest.mark.parametrize("name", list_strategies())
def test_tell_rejects_bad_input_naming_the_entry(name: str) -> None:
    strategy = get_strategy(name, small_space("nb201"), seed=0)
    archs = strategy.ask(3)
    with pytest.raises(ValueError, match="scores must be a 1-D sequence of 3"):
        strategy.tell(archs, [1.0, 2.0])
    with pytest.raises(ValueError, match=r"scores\[1\] is nan"):
        strategy.tell(archs, [1.0, math.nan, 2.0])
    stranger = next(a for a in (strategy.space.sample(np.random.default_rng(i))
                                for i in range(100)) if a not in archs)
    with pytest.raises(ValueError, match=r"archs\[0\] was not asked"):
        strategy.tell([stranger], [1.0])
    strategy.tell(archs[:1], [1.0])
    with pytest.raises(ValueError, match=r"archs\[1\] was not asked .* or was already told"):
        strategy.tell(archs[1:2] + archs[:1], [1.0, 2.0])
    assert strategy.pending == archs[1:]
    with pytest.raises(ValueError, match="n must be >= 0"):
        strategy.ask(-1)


@pytest.mark.parametrize("name", list_strategies())
def test_state_of_another_strategy_or_setting_is_refused(name: str) -> None:
    space = small_space("nb201")
    state = get_strategy(name, space, seed=0).state_dict()
    other = "random" if name != "random" else "evolution"
    with pytest.raises(ValueError, match=r"state\.strategy"):
        get_strategy(other, space, seed=0).load_state_dict(state)
    with pytest.raises(ValueError, match=r"state\.params\.max_tries"):
        get_strategy(name, space, seed=0, max_tries=7).load_state_dict(state)
    with pytest.raises(ValueError, match=r"state\.space"):
        get_strategy(name, small_space("mbv2"), seed=0).load_state_dict(state)


@pytest.mark.parametrize("name", [n for n in list_strategies() if n != "random"])
def test_beats_random_at_equal_calls(name: str) -> None:
    space = small_space("mbv2")
    mine = [run(name, space, seed=s, calls=300)[-1] for s in range(3)]
    baseline = [run("random", space, seed=s, calls=300)[-1] for s in range(3)]
    assert np.mean(mine) > np.mean(baseline)


# --- strategy-specific behaviour ----------------------------------------------------------


def test_annealing_metropolis_at_zero_temperature_and_restart() -> None:
    strategy = get_strategy("annealing", small_space("mbv2"), seed=0, t0=0.0, restart_after=3)
    first = strategy.ask(1)
    strategy.tell(first, [5.0])
    assert strategy.current == (first[0], 5.0)
    for _ in range(2):
        worse = strategy.ask(1)
        strategy.tell(worse, [1.0])
        assert strategy.current == (first[0], 5.0)
    better = strategy.ask(1)
    strategy.tell(better, [6.0])
    assert strategy.current == (better[0], 6.0)
    for _ in range(3):
        strategy.tell(strategy.ask(1), [0.0])
    assert strategy.current is None and strategy.restarts == 1


def test_annealing_accepts_losses_while_hot() -> None:
    strategy = get_strategy("annealing", small_space("mbv2"), seed=0, t0=100.0, cooling=1.0)
    strategy.tell(strategy.ask(2), [5.0, 4.0])
    assert strategy.current is not None and strategy.current[1] == 4.0


def test_fpnas_sample_count_follows_entropy() -> None:
    space = small_space("mbv2")
    strategy = FPNASSearch(space, seed=0)
    h = sum(math.log(n) for n in space.num_choices)
    assert strategy.entropy() == pytest.approx(h)
    assert strategy.suggested_batch() == math.ceil(0.25 * h)
    assert FPNASSearch(small_space("nb201"), seed=0).suggested_batch() == 4  # k_min
    objective = LinearScore(space, seed=0)
    for _ in range(30):
        archs = strategy.ask(strategy.suggested_batch())
        strategy.tell(archs, objective.score(archs))
    assert strategy.entropy() < h
    assert strategy.batch_size() < math.ceil(0.25 * h)


def test_fpnas_switches_from_factorised_to_joint_keeping_the_distribution() -> None:
    space = small_space("mbv2")
    strategy = FPNASSearch(space, seed=0, switch_after=40, k_min=8, k_max=8)
    assert strategy.phase == "coarse"
    assert strategy.theta.size < sum(space.num_choices)
    objective = LinearScore(space, seed=0, structure=1.0)
    while strategy.phase == "coarse":
        archs = strategy.ask(strategy.suggested_batch())
        strategy.tell(archs, objective.score(archs))
    assert len(strategy.history) == 40 and strategy.updates == 5
    assert strategy.theta.size == sum(space.num_choices)
    # The joint starts as the product of the shared factors: slots 1 and 2 (one stage, the
    # same choices) have the same learned, no longer uniform, distribution.
    probs = strategy.probabilities()
    np.testing.assert_allclose(probs[1], probs[2])
    assert probs[1].max() > 2 / len(probs[1])
    assert FPNASSearch(small_space("nb201"), seed=0).phase == "fine"


def test_cost_term_moves_the_distribution_towards_the_budget() -> None:
    space = small_space("mbv2")
    cost = LinearCost(space, seed=0, quantile=0.5)

    def expected_cost(strategy: Strategy) -> float:
        return float(sum(p @ cost.weights[o: o + len(p)] for p, o in zip(
            strategy.probabilities(), np.cumsum([0, *space.num_choices[:-1]]), strict=True)))

    flat = [get_strategy(n, space, seed=0, constraint=cost, samples=8, cost_weight=w)
            for n, w in (("parsec", 0.0), ("parsec", 2.0))]
    start = expected_cost(flat[0])
    for strategy in flat:
        for _ in range(10):
            archs = strategy.ask(8)
            strategy.tell(archs, np.zeros(len(archs)))  # scores say nothing
    assert expected_cost(flat[0]) == pytest.approx(start)
    assert expected_cost(flat[1]) < start


def test_strategies_do_not_import_torch() -> None:
    code = ("import sys, search.strategies, search.strategies.fpnas; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


def test_mbv2_full_size_space_works_too() -> None:
    space = get_space("mbv2")
    strategy = get_strategy("fpnas", space, seed=0)
    archs = strategy.ask(strategy.suggested_batch())
    assert len(archs) == 19 and all(space.contains(a) for a in archs)
