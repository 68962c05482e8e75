"""A search's estimator calls fanned out over the Ray cluster (`HWNAS_EXECUTOR=ray`).

:class:`RayEstimator` wraps any accuracy estimator (`score(archs)`, `describe()`): it
starts a few Ray actors, each holding its own copy of the estimator (sent once through
the object store, so ZiCo's data batches and a supernet's weights are not re-sent with
every call), cuts each `score(archs)` batch into chunks, scores the chunks on whichever
actor is free, and gathers the scores in the batch's order. A deterministic estimator
gives the same scores as it does in one process; ZiCo does too when its `threads` is
fixed, since the order of float sums in torch depends on the thread count (Ray gives
each actor `num_cpus` threads).

When a search job runs as a Ray task (:class:`service.jobs.ray_executor.RayExecutor`),
:func:`cluster_wrapper` returns :func:`fan_out`, which the search job hands to
`search.api.run_search` as its `estimator_wrapper`. Estimators with a `prepare` step
(retrained per search stage) are left in the job's process: actors would hold stale
copies.

The actors live (and hold their CPUs) as long as the wrapper: one search. By default
there is one actor per CPU of the cluster, so another search's actors, or another job's
task, wait in Ray's queue for CPUs until this search ends.

Ray is imported when a wrapper is built, never at module import.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence

import numpy as np

from search.protocols import AccuracyEstimator
from spaces import Arch

CHUNKS_PER_ACTOR = 4  # several chunks per actor, so one slow arch does not idle the rest


class _Scorer:
    """Ray actor: one copy of the estimator, scoring the chunks it is sent."""

    def __init__(self, estimator: AccuracyEstimator) -> None:
        self.estimator = estimator

    def score(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.asarray(self.estimator.score(archs), dtype=np.float64)


class RayEstimator:
    """`estimator`'s scores, computed on Ray actors; same `describe()`.

    Args:
        estimator: The estimator to copy onto the actors (it must pickle).
        actors: How many actors; None: one per `num_cpus` CPUs of the cluster (the
            calling task waits while they score, so its own CPU is free for them).
        num_cpus: CPUs each actor reserves (and the torch threads Ray gives it).
        chunk: Archs per actor call; None: about `CHUNKS_PER_ACTOR` chunks per actor.

    Example:
        >>> import ray  # doctest: +SKIP
        >>> ray.init(num_cpus=2)  # doctest: +SKIP
        >>> from spaces import get_space
        >>> from search.estimators import get_estimator
        >>> space = get_space("nb201", channels=8, resolution=8, classes=10)  # doctest: +SKIP
        >>> est = RayEstimator(get_estimator("params", space=space))  # doctest: +SKIP
        >>> est.score([space.default()]).shape  # doctest: +SKIP
        (1,)
    """

    def __init__(self, estimator: AccuracyEstimator, *, actors: int | None = None,
                 num_cpus: float = 1.0, chunk: int | None = None) -> None:
        import ray
        from ray.util import ActorPool

        if actors is not None and (not isinstance(actors, int) or actors < 1):
            raise ValueError(f"actors must be a positive integer or None, got {actors!r}")
        if num_cpus <= 0:
            raise ValueError(f"num_cpus must be positive, got {num_cpus!r}")
        if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
            raise ValueError(f"chunk must be a positive integer or None, got {chunk!r}")
        self.inner = estimator
        self.chunk = chunk
        self.actors = actors if actors is not None else max(
            1, int(ray.cluster_resources().get("CPU", 1.0) // num_cpus))
        copy = ray.put(estimator)
        scorer = ray.remote(_Scorer).options(num_cpus=num_cpus)
        self._handles = [scorer.remote(copy) for _ in range(self.actors)]
        self._pool = ActorPool(self._handles)
        self._ray = ray

    def score(self, archs: Sequence[Arch]) -> np.ndarray:
        """One score per arch, in the order of `archs`, as `estimator.score` gives them."""
        archs = list(archs)
        if not archs:
            return np.zeros(0, dtype=np.float64)
        size = self.chunk or max(1, math.ceil(len(archs) / (CHUNKS_PER_ACTOR * self.actors)))
        chunks = [archs[i:i + size] for i in range(0, len(archs), size)]
        parts = self._pool.map(lambda actor, part: actor.score.remote(part), chunks)
        return np.concatenate(list(parts))

    def describe(self) -> str:
        """The wrapped estimator's description: the scores are its own."""
        return self.inner.describe()

    def close(self) -> None:
        """Stop the actors now (otherwise Ray stops them once this object is collected)."""
        for handle in self._handles:
            self._ray.kill(handle)
        self._handles = []


def fan_out(estimator: AccuracyEstimator) -> AccuracyEstimator:
    """`estimator` scored on Ray actors, or `estimator` itself if it has a per-stage
    `prepare` (its state changes during the search, so copies would go stale)."""
    if hasattr(estimator, "prepare"):
        return estimator
    return RayEstimator(estimator)


def on_ray_worker() -> bool:
    """True inside a Ray task or actor (not in a driver, not without Ray)."""
    ray = sys.modules.get("ray")
    return (ray is not None and ray.is_initialized()
            and ray.get_runtime_context().worker.mode == ray.WORKER_MODE)


def cluster_wrapper() -> Callable[[AccuracyEstimator], AccuracyEstimator] | None:
    """:func:`fan_out` when this code runs as a Ray task (the Ray executor), else None."""
    return fan_out if on_ray_worker() else None
