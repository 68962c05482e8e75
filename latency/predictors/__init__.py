"""Latency predictors, registered by name: `lut`, `fox`, `residual`, `flops`."""

from __future__ import annotations

from . import flops, fox, lut, residual
from .base import (
    NotFittedError,
    Predictor,
    get_predictor,
    list_predictors,
    load_predictor,
    register_predictor,
)

__all__ = [
    "NotFittedError",
    "Predictor",
    "flops",
    "fox",
    "get_predictor",
    "list_predictors",
    "load_predictor",
    "lut",
    "register_predictor",
    "residual",
]
