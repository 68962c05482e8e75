"""Transfer: a predictor for a new device from its LUT and a handful of whole-arch runs.

The LUT of a new device costs a profiling run (minutes); end-to-end measurements of whole
archs are what a user wants to avoid. HELP (Lee et al., "HELP: Hardware-Adaptive Efficient
Latency Prediction for NAS via Meta-Learning", NeurIPS 2021) adapts to a device from 10
samples by meta-learning; here the LUT carries the device knowledge and `fox`'s ridge,
anchored on the LUT sum, only learns the correction, so 10-20 archs suffice.
"""

from __future__ import annotations

import numpy as np

from .lut import LookupTable
from .predictors import Predictor, get_predictor
from .samples import Samples

__all__ = ["transfer_fox"]


def transfer_fox(lut: LookupTable, samples: Samples, *, n: int = 20, seed: int = 0) -> Predictor:
    """Fit `fox` for ``lut``'s device on ``n`` archs drawn (seeded) from ``samples``.

    Raises:
        ValueError: ``n`` outside 3..len(samples), or samples of another space/device.
    """
    if not 3 <= n <= len(samples):
        raise ValueError(f"n must be between 3 and the {len(samples)} samples given, got {n}")
    pick = np.random.default_rng(seed).choice(len(samples), size=n, replace=False)
    return get_predictor("fox").fit(lut=lut, samples=samples.subset(np.sort(pick)))
