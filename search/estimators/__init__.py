"""Accuracy estimators behind `search.protocols.AccuracyEstimator`, by name.

| name | what | needs |
|---|---|---|
| `zico` | ZiCo zero-shot proxy (Li et al., ICLR 2023) | data (default: bundled digits) |
| `params`, `flops` | naive baselines | nothing |
| `random` | seeded chance floor | nothing |
| `bn` | BN-NAS indicator (Chen et al., ICCV 2021) | a supernet checkpoint |
| `supernet` | subnet accuracy after BN recalibration (SPOS) | a checkpoint, data |

Example:
    >>> from spaces import get_space
    >>> from search.estimators import get_estimator, list_estimators
    >>> "zico" in list_estimators()
    True
    >>> space = get_space("mbv2", resolution=32, width=0.25, classes=10)
    >>> get_estimator("flops", space=space).score([space.default()]).dtype
    dtype('float64')
"""

from __future__ import annotations

from . import baselines, weight_sharing, zico
from .baselines import FlopsEstimator, ParamsEstimator, RandomEstimator
from .registry import estimator_settings, get_estimator, list_estimators, register_estimator
from .weight_sharing import BNIndicator, SupernetAccuracy
from .zico import ZiCo, zico_score

__all__ = [
    "BNIndicator",
    "FlopsEstimator",
    "ParamsEstimator",
    "RandomEstimator",
    "SupernetAccuracy",
    "ZiCo",
    "baselines",
    "estimator_settings",
    "get_estimator",
    "list_estimators",
    "register_estimator",
    "weight_sharing",
    "zico",
    "zico_score",
]
