"""The one measurement protocol shared by every backend: warm-up, timed runs, robust statistics.

:func:`measure` times one model in one block: warm-up runs (a count and a minimum wall
time), then timed runs until ``runs`` are done or ``budget_ms`` of inference time is
spent (never fewer than ``min_runs``). The garbage collector is paused while timing.

:func:`measure_many` is what the runner uses, and is built for noisy, shared machines,
where the median of one model measured in two separate blocks can differ by 30%:

- **Interleaved rounds.** Every model is warmed up, then each of ``rounds`` rounds times
  every model ``ceil(runs / rounds)`` times (after ``round_warmup_runs`` untimed runs that
  bring its weights back into cache), rotating the order each round. A slow spell of the
  machine then hits a few samples of every model instead of all samples of a few models,
  and every model's samples span the whole batch.
- **Pooled median.** A model's statistics are over all its samples from all rounds. The
  median of per-round medians would resist a bad round equally well (both tolerate up to
  half of the samples being perturbed), but with a handful of runs per round each
  round's median is itself noisy, and rounds cut short by the budget would weigh as much
  as full ones; the pooled median uses every sample once and keeps p10/p90 consistent.
- **Robust spread.** ``cv = (p75 - p25) / 1.349 / median``: the interquartile range
  scaled to a normal sigma, so a few outliers (an interrupt, a page fault) neither move
  the median nor inflate the spread. ``mean_ms`` is the plain mean and does show them.
- **Re-measuring.** A model whose *drift-corrected* CV exceeds ``max_cv`` gets up to
  ``remeasure_passes`` further interleaved passes over the noisy models; the new samples
  join the pool. The decision divides each sample by the reference level of its round
  (the mean of the reference medians before and after it), so a machine that slows down
  for a few rounds does not flag every model it was timing; without a reference, the
  raw CV decides. The reported statistics stay raw.
- **Noise floor.** A :class:`ReferenceProbe` (one reference cell) is timed before the
  first round and after every round; its medians, kept through the whole run, show how
  much the machine itself drifts.

Interleaving follows "Conducting Repeatable Experiments in Highly Variable Cloud Computing
Environments" (Abedi and Brecht, ICPE 2017), whose multiple interleaved trials make
results repeatable on shared cloud machines. Departures: the order is rotated each round
rather than shuffled (deterministic, and every model still visits every position), and a
trial is a few runs of one model rather than a whole benchmark. Warm-up, repeated samples
and quantiles are the usual practice of microbenchmark harnesses (``timeit`` also pauses
the garbage collector).
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from profilers.base import Runner
from profilers.formats import ProtocolSettings

__all__ = [
    "Progress",
    "ReferenceProbe",
    "Stats",
    "compute_stats",
    "measure",
    "measure_many",
]

# IQR of a normal distribution in units of its standard deviation.
_IQR_PER_SIGMA = 1.349


@dataclass(frozen=True)
class Stats:
    """Robust statistics of one model's timed runs (milliseconds).

    Attributes:
        cv: ``(p75 - p25) / 1.349 / median``; 0 with fewer than two samples.
        runs: Number of samples.
        samples_ms: Every sample, in the order taken.
        remeasured: How many re-measuring passes the model went through.
    """

    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    cv: float
    runs: int
    samples_ms: tuple[float, ...]
    remeasured: int = 0


def compute_stats(samples_ms: Sequence[float], *, remeasured: int = 0) -> Stats:
    """Median, p10, p90, mean and robust CV of ``samples_ms``.

    Percentiles interpolate linearly between samples (numpy's default).

    Example:
        >>> s = compute_stats([1.0, 1.1, 0.9, 1.0, 50.0])
        >>> s.median_ms, round(s.cv, 3)
        (1.0, 0.074)

    Raises:
        ValueError: No samples, or a negative or non-finite one.
    """
    values = np.asarray(samples_ms, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no samples to compute statistics from")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("samples must be finite and >= 0")
    p10, p25, median, p75, p90 = np.percentile(values, [10, 25, 50, 75, 90])
    cv = (p75 - p25) / _IQR_PER_SIGMA / median if median > 0 else 0.0
    return Stats(
        median_ms=float(median),
        p10_ms=float(p10),
        p90_ms=float(p90),
        mean_ms=float(values.mean()),
        cv=float(cv),
        runs=int(values.size),
        samples_ms=tuple(float(v) for v in values),
        remeasured=remeasured,
    )


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the garbage collector (a collection would land inside some timed run)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _warm_up(runner: Runner, prepared: object, *, runs: int, ms: float) -> None:
    """At least ``runs`` untimed runs, continuing until ``ms`` of wall time has passed."""
    done = 0
    deadline = time.perf_counter_ns() + int(ms * 1e6)
    while done < runs or time.perf_counter_ns() < deadline:
        runner.run(prepared)
        done += 1


def _timed(
    runner: Runner, prepared: object, *, max_runs: int, min_runs: int, budget_ms: float | None
) -> list[float]:
    """Timed runs until ``max_runs``, or until ``budget_ms`` is spent after ``min_runs``."""
    samples: list[float] = []
    spent = 0.0
    while len(samples) < max_runs:
        if budget_ms is not None and spent >= budget_ms and len(samples) >= min_runs:
            break
        sample = runner.time_ms(prepared)
        samples.append(sample)
        spent += sample
    return samples


def measure(runner: Runner, settings: ProtocolSettings | None = None, *, seed: int = 0) -> Stats:
    """Time one model in one block: warm-up, then timed runs, then robust statistics.

    Args:
        runner: A loaded model.
        settings: Protocol settings (``rounds`` and re-measuring are not used here).
        seed: Seed of the random input.

    Example:
        >>> stats = measure(runner, ProtocolSettings(runs=50))  # doctest: +SKIP
        >>> stats.median_ms, stats.cv  # doctest: +SKIP
        (1.02, 0.013)
    """
    settings = settings or ProtocolSettings()
    prepared = runner.prepare(runner.example_input(seed))
    with _gc_paused():
        _warm_up(runner, prepared, runs=settings.warmup_runs, ms=settings.warmup_ms)
        samples = _timed(
            runner,
            prepared,
            max_runs=settings.runs,
            min_runs=settings.min_runs,
            budget_ms=settings.budget_ms,
        )
    return compute_stats(samples)


@dataclass(frozen=True)
class Progress:
    """Where :func:`measure_many` is: ``done`` of ``total`` steps (a step is one model's
    warm-up, or one model's turn in a round; re-measuring adds steps to ``total``)."""

    done: int
    total: int
    phase: str
    key: str
    elapsed_s: float

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the pace so far; None before the first step."""
        if self.done == 0:
            return None
        return self.elapsed_s / self.done * (self.total - self.done)


ProgressCallback = Callable[[Progress], None]


@dataclass
class ReferenceProbe:
    """A reference cell timed repeatedly through a run; its medians are the noise floor.

    Pass the same probe to every :func:`measure_many` call of a run: ``medians_ms`` grows
    with one median of ``ProtocolSettings.reference_runs`` timed runs per sample.
    """

    runner: Runner
    medians_ms: list[float] = field(default_factory=list)
    _prepared: object = field(default=None, init=False, repr=False)

    def sample(self, runs: int) -> float:
        """Time the reference ``runs`` times (after one untimed run); record the median."""
        if self._prepared is None:
            self._prepared = self.runner.prepare(self.runner.example_input())
        self.runner.run(self._prepared)
        samples = [self.runner.time_ms(self._prepared) for _ in range(runs)]
        median = float(np.median(samples))
        self.medians_ms.append(median)
        return median


def measure_many(
    runners: Mapping[str, Runner],
    settings: ProtocolSettings | None = None,
    *,
    progress: ProgressCallback | None = None,
    reference: ReferenceProbe | None = None,
    seed: int = 0,
) -> dict[str, Stats]:
    """Time several models in interleaved rounds; re-measure the noisy ones.

    Args:
        runners: Loaded models by key; all stay loaded for the whole call.
        settings: Protocol settings; ``budget_ms`` caps each model's timed inference time
            (split evenly over the rounds), ``min_runs`` still holds.
        progress: Called after every step; raise from it (KeyboardInterrupt) to cancel.
        reference: Timed before the first round and after every round.
        seed: Seed of the random inputs.

    Returns:
        Statistics per key, in the order of ``runners``.
    """
    settings = settings or ProtocolSettings()
    keys = list(runners)
    if not keys:
        return {}
    prepared = {key: runners[key].prepare(runners[key].example_input(seed)) for key in keys}
    samples: dict[str, list[float]] = {key: [] for key in keys}
    levels: dict[str, list[float]] = {key: [] for key in keys}
    passes = dict.fromkeys(keys, 0)
    clock = _Clock(total=len(keys) * (1 + settings.rounds), progress=progress)
    with _gc_paused():
        for key in keys:
            _warm_up(runners[key], prepared[key], runs=settings.warmup_runs, ms=settings.warmup_ms)
            clock.step("warm-up", key)
        _rounds(runners, prepared, samples, levels, keys, settings, clock, reference, "round")
        stats = {key: compute_stats(samples[key]) for key in keys}
        for number in range(1, settings.remeasure_passes + 1):
            noisy = [key for key in keys if _drift_free_cv(samples[key], levels[key])
                     > settings.max_cv]
            if not noisy:
                break
            clock.total += len(noisy) * settings.rounds
            phase = "re-measure" if settings.remeasure_passes == 1 else f"re-measure {number}"
            _rounds(runners, prepared, samples, levels, noisy, settings, clock, reference, phase)
            for key in noisy:
                passes[key] += 1
                stats[key] = compute_stats(samples[key], remeasured=passes[key])
    return stats


def _drift_free_cv(samples: Sequence[float], levels: Sequence[float]) -> float:
    """The robust CV of ``samples`` each divided by its round's reference level.

    ``levels`` is empty when no reference was timed: the raw CV is all there is.
    """
    if not levels:
        return compute_stats(samples).cv
    return compute_stats(np.asarray(samples) / np.asarray(levels)).cv


@dataclass
class _Clock:
    """Counts steps and reports them to the progress callback."""

    total: int
    progress: ProgressCallback | None
    done: int = 0
    start_ns: int = field(default_factory=time.perf_counter_ns)

    def step(self, phase: str, key: str) -> None:
        self.done += 1
        if self.progress is not None:
            elapsed = (time.perf_counter_ns() - self.start_ns) / 1e9
            self.progress(Progress(self.done, self.total, phase, key, elapsed))


def _rounds(
    runners: Mapping[str, Runner],
    prepared: Mapping[str, object],
    samples: dict[str, list[float]],
    levels: dict[str, list[float]],
    keys: Sequence[str],
    settings: ProtocolSettings,
    clock: _Clock,
    reference: ReferenceProbe | None,
    phase: str,
) -> None:
    """``settings.rounds`` rounds over ``keys``, adding up to ``settings.runs`` samples each.

    With a reference, each new sample's round level (mean of the reference medians taken
    just before and just after its round) is appended to ``levels``.
    """
    per_round = math.ceil(settings.runs / settings.rounds)
    min_per_round = math.ceil(settings.min_runs / settings.rounds)
    budget = settings.budget_ms / settings.rounds if settings.budget_ms is not None else None
    goal = {key: len(samples[key]) + settings.runs for key in keys}
    before = reference.sample(settings.reference_runs) if reference is not None else 0.0
    for number in range(settings.rounds):
        shift = number % len(keys)
        taken: dict[str, int] = {}
        for key in [*keys[shift:], *keys[:shift]]:
            left = goal[key] - len(samples[key])
            if left > 0:
                runner, inputs = runners[key], prepared[key]
                _warm_up(runner, inputs, runs=settings.round_warmup_runs, ms=0.0)
                new = _timed(
                    runner,
                    inputs,
                    max_runs=min(per_round, left),
                    min_runs=min(min_per_round, left),
                    budget_ms=budget,
                )
                samples[key] += new
                taken[key] = len(new)
            clock.step(f"{phase} {number + 1}/{settings.rounds}", key)
        if reference is not None:
            after = reference.sample(settings.reference_runs)
            for key, count in taken.items():
                levels[key] += [(before + after) / 2] * count
            before = after
