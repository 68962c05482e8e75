"""The space registry: an explicit dict filled by a decorator, looked up by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TypeVar

from .base import Space

_SPACES: dict[str, type[Space]] = {}

S = TypeVar("S", bound=type[Space])


class UnknownSpaceError(KeyError):
    """No space is registered under that name."""

    def __str__(self) -> str:
        return str(self.args[0])


def register_space(name: str) -> Callable[[S], S]:
    """Class decorator: make a `Space` subclass available as `get_space(name)`."""

    def wrap(cls: S) -> S:
        if name in _SPACES:
            raise ValueError(f"space {name!r} is registered twice")
        _SPACES[name] = cls
        return cls

    return wrap


def list_spaces() -> list[str]:
    """Names of the registered spaces, sorted."""
    return sorted(_SPACES)


def space_params(name: str) -> dict[str, object]:
    """The parameters `get_space(name, ...)` accepts, with their defaults."""
    cls = _lookup(name)
    sig = inspect.signature(cls.__init__)
    return {p.name: p.default for p in list(sig.parameters.values())[1:]}


def get_space(name: str, **params: object) -> Space:
    """Build the space registered as `name` with `params`.

    Raises:
        UnknownSpaceError: no such space (the message lists the known ones).
        ValueError: a parameter the space does not take, or a bad value (named).

    Example:
        >>> get_space("mbv2", resolution=32).params["resolution"]
        32
    """
    cls = _lookup(name)
    allowed = space_params(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"space {name!r} has no parameter {unknown[0]!r} (it takes: {', '.join(allowed)})"
        )
    return cls(**params)


def _lookup(name: str) -> type[Space]:
    try:
        return _SPACES[name]
    except KeyError:
        raise UnknownSpaceError(
            f"unknown space {name!r} (known: {', '.join(list_spaces())})"
        ) from None
