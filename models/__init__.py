"""Torch networks from search-space architectures: blocks, nets, supernets, counts, export.

Example:
    >>> from spaces import get_space
    >>> from models import build, count_params
    >>> space = get_space("mbv2", resolution=32, classes=10)
    >>> count_params(build(space, space.default())) > 0
    True
"""

from __future__ import annotations

from .blocks import BlockSpec, build_block
from .bn import recalibrate_bn
from .builder import Net, build, build_cell, cell_spec
from .counting import count_flops, count_params
from .supernet import Choice, Supernet

__all__ = [
    "BlockSpec",
    "Choice",
    "Net",
    "Supernet",
    "build",
    "build_block",
    "build_cell",
    "cell_spec",
    "count_flops",
    "count_params",
    "recalibrate_bn",
]
