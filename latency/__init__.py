"""Latency prediction: lookup tables, predictors, and how far to trust them.

No torch here: a predictor is fitted from ``profilers``' measurements and end-to-end
samples, saved as JSON, and predicts from numpy tables, so the service and an edge
tool can use it with numpy, pydantic and scikit-learn (fitting ``residual`` only).

Example:
    >>> from latency import LookupTable, get_predictor, load_samples  # doctest: +SKIP
    >>> lut = LookupTable.from_measurements("prof/measurements.json")  # doctest: +SKIP
    >>> fox = get_predictor("fox").fit(lut=lut, samples=load_samples("e2e.json"))  # doctest: +SKIP
    >>> fox.predict([space.default()])  # doctest: +SKIP
"""

from __future__ import annotations

from .encoding import arch_indices
from .evaluate import AccuracyReport, accuracy, evaluate
from .formats import DeviceRef, E2EFile, LutFile, PredictorFile, SpaceRef
from .lut import LookupMissError, LookupTable
from .predictors import NotFittedError, Predictor, get_predictor, list_predictors, load_predictor
from .samples import Samples, load_samples, samples_from_measurements, save_samples
from .transfer import transfer_fox

__all__ = [
    "AccuracyReport",
    "DeviceRef",
    "E2EFile",
    "LookupMissError",
    "LookupTable",
    "LutFile",
    "NotFittedError",
    "Predictor",
    "PredictorFile",
    "Samples",
    "SpaceRef",
    "accuracy",
    "arch_indices",
    "evaluate",
    "get_predictor",
    "list_predictors",
    "load_predictor",
    "load_samples",
    "samples_from_measurements",
    "save_samples",
    "transfer_fox",
]
