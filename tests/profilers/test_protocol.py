"""The measurement protocol on synthetic timings: statistics, budgets, rounds, re-measuring."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import numpy as np
import pytest

from profilers.formats import ProtocolSettings
from profilers.protocol import Progress, ReferenceProbe, compute_stats, measure, measure_many

QUICK = {"warmup_runs": 1, "warmup_ms": 0.0, "round_warmup_runs": 0}


class Machine:
    """A fake machine: counts timed runs and slows every run down inside ``slow`` (indices)."""

    def __init__(self, slow: range = range(0), factor: float = 1.0) -> None:
        self.calls = 0
        self.log: list[str] = []
        self.slow, self.factor = slow, factor

    def time(self, key: str, base_ms: float) -> float:
        self.log.append(key)
        slowed = self.calls in self.slow
        self.calls += 1
        return base_ms * (self.factor if slowed else 1.0)


class FakeRunner:
    """A Runner whose timed runs return scripted times (cycled) on a shared Machine."""

    input_shape = (1,)
    device = "fake"

    def __init__(self, key: str, times_ms: Iterable[float], machine: Machine | None = None) -> None:
        self.key = key
        self._times = itertools.cycle(list(times_ms))
        self.machine = machine or Machine()
        self.untimed = 0

    def example_input(self, seed: int = 0) -> np.ndarray:
        return np.zeros(self.input_shape, np.float32)

    def prepare(self, x: np.ndarray) -> object:
        return x

    def run(self, prepared: object) -> None:
        self.untimed += 1

    def time_ms(self, prepared: object) -> float:
        return self.machine.time(self.key, next(self._times))

    def describe(self) -> dict[str, str]:
        return {"device": self.device}


def test_stats_on_known_samples() -> None:
    stats = compute_stats([float(v) for v in range(1, 101)])
    assert stats.median_ms == pytest.approx(50.5)
    assert stats.p10_ms == pytest.approx(10.9)
    assert stats.p90_ms == pytest.approx(90.1)
    assert stats.mean_ms == pytest.approx(50.5)
    assert stats.cv == pytest.approx((75.25 - 25.75) / 1.349 / 50.5)
    assert stats.runs == 100


def test_stats_ignore_outliers() -> None:
    stats = compute_stats([1.0] * 18 + [500.0, 900.0])
    assert stats.median_ms == 1.0
    assert stats.cv == 0.0
    assert stats.mean_ms > 50  # the mean shows them; the median and cv do not


def test_stats_of_a_single_sample() -> None:
    stats = compute_stats([2.0])
    assert (stats.median_ms, stats.p10_ms, stats.p90_ms, stats.cv) == (2.0, 2.0, 2.0, 0.0)


@pytest.mark.parametrize("samples", [[], [1.0, -1.0], [1.0, float("nan")], [float("inf")]])
def test_stats_reject_bad_samples(samples: list[float]) -> None:
    with pytest.raises(ValueError, match="samples"):
        compute_stats(samples)


def test_measure_stops_at_runs_after_warm_up() -> None:
    runner = FakeRunner("a", [1.0, 2.0, 3.0])
    stats = measure(runner, ProtocolSettings(runs=30, min_runs=5, warmup_runs=4, warmup_ms=0))
    assert stats.runs == 30
    assert stats.median_ms == 2.0
    assert runner.untimed == 4  # warm-up runs are run, not timed


def test_measure_stops_at_budget_but_not_before_min_runs() -> None:
    settings = ProtocolSettings(runs=100, min_runs=3, budget_ms=50.0, **QUICK)
    assert measure(FakeRunner("a", [10.0]), settings).runs == 5
    tight = ProtocolSettings(runs=100, min_runs=4, budget_ms=5.0, **QUICK)
    assert measure(FakeRunner("a", [10.0]), tight).runs == 4


def test_rounds_interleave_models_and_rotate_order() -> None:
    machine = Machine()
    runners = {key: FakeRunner(key, [1.0], machine) for key in "abc"}
    settings = ProtocolSettings(runs=4, min_runs=2, rounds=2, remeasure_passes=0, **QUICK)
    stats = measure_many(runners, settings)
    assert machine.log == list("aabbcc" + "bbccaa")
    assert all(s.runs == 4 for s in stats.values())


def test_budget_is_split_over_rounds() -> None:
    settings = ProtocolSettings(
        runs=40, min_runs=4, rounds=4, budget_ms=20.0, remeasure_passes=0, **QUICK
    )
    stats = measure_many(
        {"slow": FakeRunner("slow", [10.0]), "fast": FakeRunner("fast", [0.1])}, settings
    )
    assert stats["slow"].runs == 4  # 5 ms per round: one run each round (min_runs / rounds)
    assert stats["fast"].runs == 40


def test_interleaving_resists_a_slow_spell() -> None:
    """A slow third of the time skews block measurements of the models it hits, not rounds."""

    def ratio(interleaved: bool) -> float:
        machine = Machine(slow=range(80, 120), factor=1.5)
        runners = {"a": FakeRunner("a", [1.0], machine), "b": FakeRunner("b", [2.0], machine)}
        settings = ProtocolSettings(
            runs=60, rounds=6 if interleaved else 1, remeasure_passes=0, **QUICK
        )
        if interleaved:
            stats = measure_many(runners, settings)
        else:
            stats = {key: measure(runner, settings) for key, runner in runners.items()}
        return stats["b"].median_ms / stats["a"].median_ms

    assert ratio(interleaved=False) == pytest.approx(3.0)  # b measured inside the slow spell
    assert ratio(interleaved=True) == pytest.approx(2.0)


def test_noisy_models_are_remeasured_and_pooled() -> None:
    runners = {"steady": FakeRunner("steady", [1.0]), "noisy": FakeRunner("noisy", [1.0, 2.0])}
    settings = ProtocolSettings(
        runs=10, min_runs=2, rounds=2, max_cv=0.05, remeasure_passes=2, **QUICK
    )
    stats = measure_many(runners, settings)
    assert (stats["steady"].runs, stats["steady"].remeasured) == (10, 0)
    assert (stats["noisy"].runs, stats["noisy"].remeasured) == (30, 2)  # stays noisy: 2 passes


@pytest.mark.parametrize("with_reference", [True, False])
def test_machine_drift_alone_does_not_trigger_remeasuring(with_reference: bool) -> None:
    # The whole machine runs twice as slow from the third round on: the model's raw
    # samples spread (robust CV ~0.5), but divided by the reference level of their round
    # they are steady, so only a run without a reference re-measures.
    # Timed calls, reference included: 3 (ref) + 5 (a) + 3 + 5 + 3 | 5 + 3 + 5 + 3.
    machine = Machine(slow=range(19 if with_reference else 10, 10**6), factor=2.0)
    reference = ReferenceProbe(FakeRunner("ref", [0.5], machine)) if with_reference else None
    settings = ProtocolSettings(runs=20, min_runs=4, rounds=4, max_cv=0.1, reference_runs=3,
                                remeasure_passes=1, **QUICK)
    stats = measure_many({"a": FakeRunner("a", [1.0], machine)}, settings, reference=reference)
    assert stats["a"].p90_ms == 2 * stats["a"].p10_ms  # the reported spread stays raw
    assert stats["a"].remeasured == (0 if with_reference else 1)


def test_reference_probe_and_progress() -> None:
    reference = ReferenceProbe(FakeRunner("ref", [0.5]))
    seen: list[Progress] = []
    settings = ProtocolSettings(runs=6, min_runs=3, rounds=3, reference_runs=4, **QUICK)
    measure_many(
        {k: FakeRunner(k, [1.0]) for k in "ab"}, settings, progress=seen.append, reference=reference
    )
    assert reference.medians_ms == [0.5] * 4  # before the first round and after each round
    assert [p.done for p in seen] == list(range(1, 9))  # 2 warm-ups + 2 models x 3 rounds
    assert seen[-1].done == seen[-1].total and seen[-1].eta_s == 0.0
    assert seen[0].phase == "warm-up" and seen[-1].phase == "round 3/3"


def test_progress_can_cancel() -> None:
    def cancel(progress: Progress) -> None:
        if progress.done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        measure_many(
            {k: FakeRunner(k, [1.0]) for k in "ab"}, ProtocolSettings(**QUICK), progress=cancel
        )


def test_nothing_to_measure() -> None:
    assert measure_many({}, ProtocolSettings()) == {}
