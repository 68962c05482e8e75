"""The naive proxies ZiCo is measured against, and a random score.

Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients"
(ICLR 2023) compare every proxy with #params and FLOPs, which on NATS-Bench-TSS already
reach Kendall tau 0.57 and 0.54. Both are counted on the standalone network of each arch
(`models.count_params`, `models.count_flops` at batch 1 and the space's resolution).
`random` gives the floor: seeded uniform scores, the same for the same arch and seed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from models import build, count_flops, count_params
from spaces import Arch, Space

from .registry import register_estimator


@register_estimator("params")
class ParamsEstimator:
    """Number of parameters of the standalone net: more is better."""

    def __init__(self, space: Space) -> None:
        self.space = space

    def score(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.array([count_params(build(self.space, a)) for a in archs], dtype=np.float64)

    def describe(self) -> str:
        return "params: number of parameters of the standalone net (naive baseline, ZiCo paper)."


@register_estimator("flops")
class FlopsEstimator:
    """FLOPs of one forward pass at batch 1: more is better."""

    def __init__(self, space: Space) -> None:
        self.space = space

    def score(self, archs: Sequence[Arch]) -> np.ndarray:
        out = []
        for arch in archs:
            net = build(self.space, arch)
            out.append(count_flops(net, net.example_input(1)))
        return np.asarray(out, dtype=np.float64)

    def describe(self) -> str:
        return ("flops: FLOPs of one forward pass at batch 1, multiply-add = 2 "
                "(naive baseline, ZiCo paper).")


@register_estimator("random")
class RandomEstimator:
    """Uniform [0, 1) scores from a hash of (seed, arch): the chance-level floor."""

    def __init__(self, space: Space, *, seed: int = 0) -> None:
        self.space = space
        self.seed = seed

    def score(self, archs: Sequence[Arch]) -> np.ndarray:
        out = []
        for arch in archs:
            digest = hashlib.sha256(f"{self.seed}:{self.space.encode(arch)}".encode()).digest()
            out.append(np.random.default_rng(int.from_bytes(digest[:8], "little")).random())
        return np.asarray(out, dtype=np.float64)

    def describe(self) -> str:
        return f"random: uniform scores, seeded by (seed={self.seed}, arch) (chance floor)."
