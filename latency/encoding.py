"""Archs -> choice indices, fast enough for 100,000 archs at a time.

`Space.to_indices` validates each arch in a Python loop over slots; predictors call this
instead: all ops are flattened and mapped to codes by one dict in C (``np.fromiter`` over
``map``), then to each slot's choice index by one array gather; an op a slot does not
allow falls back to `Space.validate` for its message. An
int array of shape (n, slots) is accepted as is (range-checked), for callers such as
search strategies that already hold indices.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

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
    vocab: dict[str, int] = {}
    for slot in slots:
        for op in slot.choices:
            vocab.setdefault(op, len(vocab))
    # code -> choice index, per slot (-1: the op is not allowed in that slot)
    choice = np.full((len(slots), len(vocab)), -1, dtype=np.int64)
    for s, slot in enumerate(slots):
        for i, op in enumerate(slot.choices):
            choice[s, vocab[op]] = i
    flat = chain.from_iterable(a.ops for a in items)
    try:
        codes = np.fromiter(map(vocab.__getitem__, flat), dtype=np.int64,
                            count=len(items) * len(slots)).reshape(len(items), len(slots))
    except KeyError:
        codes = None
    out = choice[np.arange(len(slots)), codes] if codes is not None else None
    if out is None or (out < 0).any():
        for a in items:
            space.validate(a)
        raise ArchError(f"{space.name}: an arch does not fit the space")
    return out
