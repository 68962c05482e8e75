"""Search spaces: `Space`, `Arch`, and the registry of built-in spaces.

Pure Python and numpy (no torch), so predictors and board tools can use it.

Example:
    >>> import numpy as np
    >>> from spaces import get_space
    >>> space = get_space("mbv2", resolution=32)
    >>> arch = space.sample(np.random.default_rng(0))
    >>> space.decode(space.encode(arch)) == arch
    True
"""

from __future__ import annotations

from . import mbv2, nb201
from .base import Arch, ArchError, Cell, Shape, Slot, Space
from .registry import UnknownSpaceError, get_space, list_spaces, register_space, space_params

__all__ = [
    "Arch",
    "ArchError",
    "Cell",
    "Shape",
    "Slot",
    "Space",
    "UnknownSpaceError",
    "get_space",
    "list_spaces",
    "mbv2",
    "nb201",
    "register_space",
    "space_params",
]
