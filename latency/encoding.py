"""Archs -> choice indices, fast enough for 100,000 archs at a time.

`Space.to_indices` validates each arch in a Python loop over slots; predictors call this
instead: the ops are transposed to one tuple per slot in C (``zip(*...)``) and mapped with
one dict per slot, and an unknown op falls back to `Space.validate` for its message. An
int array of shape (n, slots) is accepted as is (range-checked), for callers such as
search strategies that already hold indices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spaces import Arch, ArchError, Space

__all__ = ["arch_indices"]


def arch_indices(space: Space, archs: Sequence[Arch | str] | np.ndarray) -> np.ndarray:
    """Choice index per slot, shape (len(archs), len(space.slots)), dtype int64.

    Args:
        space: The space the archs belong to.
        archs: `Arch` values, canonical arch strings, or an int array (n, slots).

    Raises:
        ArchError: An arch the space cannot hold (the slot and op named).
    """
    slots = space.slots
    if isinstance(archs, np.ndarray):
        if archs.ndim != 2 or archs.shape[1] != len(slots) or archs.dtype.kind not in "iu":
            raise ArchError(f"{space.name}: an index array must be integer, shape (n, "
                            f"{len(slots)}), got {archs.dtype} {archs.shape}")
        idx = archs.astype(np.int64, copy=False)
        bad = (idx < 0) | (idx >= np.asarray(space.num_choices))
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ArchError(f"slot {slots[col].name}: choice index {idx[row, col]} out of range "
                            f"(row {row})")
        return idx
    items = [space.decode(a) if isinstance(a, str) else a for a in archs]
    if not items:
        return np.empty((0, len(slots)), dtype=np.int64)
    if not all(isinstance(a, Arch) and len(a.ops) == len(slots) for a in items):
        for a in items:
            space.validate(a)
    out = np.empty((len(items), len(slots)), dtype=np.int64)
    columns = list(zip(*(a.ops for a in items), strict=True))
    for s, (slot, column) in enumerate(zip(slots, columns, strict=True)):
        lookup = {op: i for i, op in enumerate(slot.choices)}
        try:
            out[:, s] = [lookup[op] for op in column]
        except KeyError:
            for a in items:
                space.validate(a)
            raise
    return out
