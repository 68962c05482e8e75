"""Additive arch features, precomputed per slot and choice so predicting is index + sum.

Every feature a predictor here uses is a sum over slots of a number that depends only on
the slot and its chosen op: the LUT sum and its per-stage parts, FLOPs, op-type counts
(SE, h-swish, kernel 5/7, expansion 3/6, skips) and FOX-NAS's per-stage features (Liu et
al., "FOX-NAS: Fast, On-device and Explainable Neural Architecture Search", ICCVW 2021:
blocks per stage, and blocks x mean expansion / mean kernel, which are the per-stage sums
of expansion and kernel). A :class:`Table` holds them as an array (slots, choices,
features) plus the fixed part (stem, head); ``Table.sum(idx)`` is one gather per slot, no
Python loop per arch.

FLOPs are computed analytically from the cells' shapes (no torch), as torch's
``FlopCounterMode`` counts them in ``models.counting`` (multiply-add = 2, convolutions and
linear layers only); a test checks the two agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from spaces import Cell, Space
from spaces.mbv2 import SKIP, make_divisible, parse_op

from .lut import LookupTable

__all__ = ["Table", "cell_flops", "flops_table", "lut_table", "structure_table"]


@dataclass
class Table:
    """Additive features: ``value(arch) = fixed + sum_s slot[s, choice_s]``.

    Attributes:
        names: Feature names, length F.
        slot: Per slot and choice, shape (slots, max choices, F); padding is 0.
        fixed: The part every arch has (stem, head), shape (F,).
    """

    names: list[str]
    slot: np.ndarray
    fixed: np.ndarray

    def sum(self, idx: np.ndarray) -> np.ndarray:
        """Feature matrix (n, F) of the archs whose choice indices are ``idx`` (n, slots)."""
        out = np.tile(self.fixed, (idx.shape[0], 1))
        for s in range(self.slot.shape[0]):
            out += self.slot[s, idx[:, s]]
        return out

    def combine(self, weights: np.ndarray) -> Table:
        """The one-feature table of ``features @ weights`` (a linear model, precomputed)."""
        return Table(["combined"], (self.slot @ weights)[..., None],
                     np.array([self.fixed @ weights]))

    def column(self, name: str) -> Table:
        """The one-feature table of feature ``name``."""
        i = self.names.index(name)
        return Table([name], self.slot[..., i : i + 1], self.fixed[i : i + 1])

    def concat(self, other: Table) -> Table:
        return Table(self.names + other.names, np.concatenate([self.slot, other.slot], axis=2),
                     np.concatenate([self.fixed, other.fixed]))


def _build(space: Space, names: list[str],
           per_cell: Callable[[int, str], dict[str, float]],
           fixed: dict[str, float]) -> Table:
    slot = np.zeros((len(space.slots), max(space.num_choices), len(names)))
    position = {n: i for i, n in enumerate(names)}
    for s, sl in enumerate(space.slots):
        for c, op in enumerate(sl.choices):
            for name, value in per_cell(s, op).items():
                slot[s, c, position[name]] += value
    fixed_vec = np.zeros(len(names))
    for name, value in fixed.items():
        fixed_vec[position[name]] += value
    return Table(list(names), slot, fixed_vec)


def _group(cell: Cell) -> str:
    """Cells are grouped by output channels: the stages of both built-in spaces."""
    return f"c{cell.out_shape.ch}"


def _groups(space: Space) -> list[str]:
    found = {int(_group(c)[1:]) for c in space.cells() if c.kind == "cell"}
    return [f"c{ch}" for ch in sorted(found)]


def lut_table(space: Space, lut: LookupTable) -> Table:
    """``lut_ms`` (the whole LUT sum, stem and head included) and ``lut_ms_<stage>`` parts.

    Raises:
        LookupMissError: A cell of ``space`` is not in ``lut`` (the key named).
    """
    lut.require(space)
    groups = _groups(space)
    names = ["lut_ms"] + [f"lut_ms_{g}" for g in groups]

    def per_cell(s: int, op: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for cell in space.slot_cells(s, op):
            ms = lut.latency_ms(cell.key)
            out["lut_ms"] = out.get("lut_ms", 0.0) + ms
            name = f"lut_ms_{_group(cell)}"
            out[name] = out.get(name, 0.0) + ms
        return out

    fixed = {"lut_ms": sum(lut.latency_ms(c.key) for c in space.fixed_cells())}
    return _build(space, names, per_cell, fixed)


def lut_var_table(space: Space, lut: LookupTable) -> Table:
    """Summed variance (ms^2) of the cells' medians, from their measured spread."""
    def per_cell(s: int, op: str) -> dict[str, float]:
        return {"lut_var": sum(lut.se_ms(c.key) ** 2 for c in space.slot_cells(s, op))}

    fixed = {"lut_var": sum(lut.se_ms(c.key) ** 2 for c in space.fixed_cells())}
    return _build(space, ["lut_var"], per_cell, fixed)


# --- FLOPs -----------------------------------------------------------------------------


def _mbconv_macs(cin: int, cout: int, res_in: int, res_out: int, k: int, e: int,
                 se: bool) -> int:
    mid = cin * e
    macs = cin * mid * res_in**2 if e != 1 else 0
    macs += mid * k * k * res_out**2 + mid * cout * res_out**2
    if se:
        macs += 2 * mid * make_divisible(mid / 4)
    return macs


def _mbv2_macs(cell: Cell) -> int:
    params = dict(cell.params)
    cin, cout = cell.in_shape.ch, cell.out_shape.ch
    if cell.kind == "stem":
        mid, res = int(params["mid_ch"]), cell.out_shape.res
        return cin * mid * 9 * res**2 + _mbconv_macs(mid, cout, res, res, 3, 1, False)
    if cell.kind == "head":
        mid = int(params["mid_ch"])
        return cin * mid * cell.in_shape.res**2 + mid * cout
    k, e, se, _ = parse_op(cell.op)
    return _mbconv_macs(cin, cout, cell.in_shape.res, cell.out_shape.res, k, e, se)


def _nb201_macs(cell: Cell) -> int:
    cin, cout, res = cell.in_shape.ch, cell.out_shape.ch, cell.out_shape.res
    if cell.op == "stem":
        return cin * cout * 9 * res**2
    if cell.op == "resblock":
        return cin * cout * 9 * res**2 + cout * cout * 9 * res**2 + cin * cout * res**2
    if cell.op == "head":
        return cin * cout
    kernel = {"nor_conv_1x1": 1, "nor_conv_3x3": 3, "avg_pool_3x3": 0}[cell.op]
    return cin * cout * kernel * kernel * res**2


_MACS: dict[str, Callable[[Cell], int]] = {"mbv2": _mbv2_macs, "nb201": _nb201_macs}


def cell_flops(space_name: str, cell: Cell) -> int:
    """FLOPs (multiply-add = 2) of one cell of a built-in space.

    Raises:
        ValueError: No analytic FLOPs for that space.
    """
    try:
        macs = _MACS[space_name]
    except KeyError:
        raise ValueError(f"space {space_name!r}: no analytic FLOPs "
                         f"(known: {', '.join(_MACS)})") from None
    return 2 * macs(cell)


def flops_table(space: Space) -> Table:
    """``mflops`` (whole arch, stem and head included) and ``mflops_<stage>`` parts."""
    groups = _groups(space)
    names = ["mflops"] + [f"mflops_{g}" for g in groups]

    def per_cell(s: int, op: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for cell in space.slot_cells(s, op):
            value = cell_flops(space.name, cell) / 1e6
            out["mflops"] = out.get("mflops", 0.0) + value
            out[f"mflops_{_group(cell)}"] = out.get(f"mflops_{_group(cell)}", 0.0) + value
        return out

    fixed = {"mflops": sum(cell_flops(space.name, c) for c in space.fixed_cells()) / 1e6}
    return _build(space, names, per_cell, fixed)


# --- structure: op-type counts and FOX-NAS per-stage features ---------------------------


def _mbv2_structure(space: Space) -> Table:
    stages = sorted({sl.name.split(".")[0] for sl in space.slots})
    names = ["skip", "se", "hswish", "k5", "k7", "e3", "e6"]
    for st in stages:
        names += [f"blocks_{st}", f"expand_sum_{st}", f"kernel_sum_{st}"]

    def per_cell(s: int, op: str) -> dict[str, float]:
        if op == SKIP:
            return {"skip": 1.0}
        k, e, se, act = parse_op(op)
        st = space.slots[s].name.split(".")[0]
        return {"se": float(se), "hswish": float(act == "hswish"), "k5": float(k == 5),
                "k7": float(k == 7), "e3": float(e == 3), "e6": float(e == 6),
                f"blocks_{st}": 1.0, f"expand_sum_{st}": float(e), f"kernel_sum_{st}": float(k)}

    return _build(space, names, per_cell, {})


def _onehot_structure(space: Space) -> Table:
    """Generic: count of each op, and the op in each slot (one-hot)."""
    ops = sorted({op for sl in space.slots for op in sl.choices})
    names = [f"n_{op}" for op in ops] + [f"{sl.name}={op}" for sl in space.slots
                                           for op in sl.choices]

    def per_cell(s: int, op: str) -> dict[str, float]:
        return {f"n_{op}": 1.0, f"{space.slots[s].name}={op}": 1.0}

    return _build(space, names, per_cell, {})


def structure_table(space: Space) -> Table:
    """Op-type counts and per-stage structure (mbv2), or op counts + one-hot (others)."""
    if space.name == "mbv2":
        return _mbv2_structure(space)
    return _onehot_structure(space)
