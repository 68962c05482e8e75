"""How far to trust a predictor: its error on held-out archs measured end to end.

The figures nn-Meter (Zhang et al., MobiSys 2021) reports (the share of archs predicted
within +-10%, and +-5%) plus RMSE, MAPE and Kendall's tau (the ranking a search relies
on), beside the measurement noise floor: the robust CV of the reference cell's medians
taken through the profiling run. A predictor cannot be judged more precisely than the
machine measures; on a noisy machine the +-5% share is bounded by it.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.stats import kendalltau

from .formats import robust_cv
from .predictors.base import Predictor
from .samples import Samples

__all__ = ["AccuracyReport", "accuracy", "evaluate"]


class AccuracyReport(BaseModel):
    """Accuracy of one predictor on measured archs.

    Attributes:
        kind: The predictor kind.
        archs: How many archs it was judged on.
        within_5pct, within_10pct: Share of archs with ``|pred / measured - 1| <=`` 5%, 10%.
        rmse_ms: Root mean squared error.
        mape: Mean absolute percentage error, as a ratio (0.03 is 3%).
        kendall_tau: Rank correlation of predicted and measured latency.
        noise_floor: Robust CV of the reference-cell medians of the measuring run(s); None
            when no reference series came with the data or the predictor.
        mean_std_ms: Mean of the predictor's own ``predict_std`` over these archs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    archs: int
    within_5pct: float
    within_10pct: float
    rmse_ms: float
    mape: float
    kendall_tau: float
    noise_floor: float | None
    mean_std_ms: float | None = None

    def line(self) -> str:
        floor = f"{self.noise_floor:.1%}" if self.noise_floor is not None else "n/a"
        return (f"{self.kind:<9} n={self.archs:<4} +-10% {self.within_10pct:6.1%}  "
                f"+-5% {self.within_5pct:6.1%}  RMSE {self.rmse_ms:7.3f} ms  "
                f"MAPE {self.mape:6.2%}  tau {self.kendall_tau:5.3f}  noise floor {floor}")


def accuracy(kind: str, predicted: np.ndarray, measured: np.ndarray, *,
             noise_floor: float | None = None, std: np.ndarray | None = None) -> AccuracyReport:
    """The report for ``predicted`` against ``measured`` latencies (ms)."""
    predicted = np.asarray(predicted, dtype=np.float64)
    measured = np.asarray(measured, dtype=np.float64)
    if predicted.shape != measured.shape or measured.ndim != 1 or measured.size == 0:
        raise ValueError(f"predicted {predicted.shape} and measured {measured.shape} must be "
                         "two non-empty vectors of one length")
    rel = np.abs(predicted / measured - 1.0)
    tau = float(kendalltau(predicted, measured).statistic) if measured.size > 1 else float("nan")
    return AccuracyReport(
        kind=kind, archs=int(measured.size),
        within_5pct=float(np.mean(rel <= 0.05)), within_10pct=float(np.mean(rel <= 0.10)),
        rmse_ms=float(np.sqrt(np.mean((predicted - measured) ** 2))),
        mape=float(np.mean(rel)), kendall_tau=tau, noise_floor=noise_floor,
        mean_std_ms=float(np.mean(std)) if std is not None else None,
    )


def evaluate(predictor: Predictor, measured: Samples) -> AccuracyReport:
    """Judge ``predictor`` on ``measured`` (held-out archs of its space and device).

    The noise floor is the samples' own reference series when they carry one, else the
    predictor's (from the LUT run).

    Raises:
        ValueError: The samples are of another space or device than the predictor's.
    """
    predictor.check(measured, "held-out samples")
    predicted = predictor.predict(measured.archs)
    floor = robust_cv(measured.reference)
    return accuracy(predictor.kind, predicted, measured.latency_ms,
                    noise_floor=floor if floor is not None else predictor.noise_floor,
                    std=predictor.predict_std(measured.archs))
