"""The estimator registry: an explicit dict filled by a decorator, looked up by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TypeVar

from search.protocols import AccuracyEstimator

_ESTIMATORS: dict[str, type] = {}

E = TypeVar("E", bound=type)


def register_estimator(name: str) -> Callable[[E], E]:
    """Class decorator: make an `AccuracyEstimator` class available as `get_estimator(name)`."""

    def wrap(cls: E) -> E:
        if name in _ESTIMATORS:
            raise ValueError(f"estimator {name!r} is registered twice")
        _ESTIMATORS[name] = cls
        return cls

    return wrap


def list_estimators() -> list[str]:
    """Names of the registered estimators, sorted."""
    return sorted(_ESTIMATORS)


def estimator_settings(name: str) -> dict[str, object]:
    """The settings `get_estimator(name, ...)` accepts, with their defaults
    (`inspect.Parameter.empty` for required ones)."""
    sig = inspect.signature(_lookup(name).__init__)
    return {p.name: p.default for p in list(sig.parameters.values())[1:]}


def get_estimator(name: str, **settings: object) -> AccuracyEstimator:
    """Build the estimator registered as `name`.

    Raises:
        ValueError: unknown name, a setting it does not take, or a required one missing.

    Example:
        >>> from spaces import get_space
        >>> est = get_estimator("params", space=get_space("mbv2", resolution=32, classes=10))
        >>> est.score([est.space.default()]).shape
        (1,)
    """
    allowed = estimator_settings(name)
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise ValueError(f"estimator {name!r} has no setting {unknown[0]!r} "
                         f"(it takes: {', '.join(allowed)})")
    missing = [k for k, v in allowed.items() if v is inspect.Parameter.empty and k not in settings]
    if missing:
        raise ValueError(f"estimator {name!r} needs the setting {missing[0]!r}")
    return _lookup(name)(**settings)


def _lookup(name: str) -> type:
    try:
        return _ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown estimator {name!r} "
                         f"(known: {', '.join(list_estimators())})") from None
