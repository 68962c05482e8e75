"""Architectures as values, and the rules every search space shares.

A `Space` is a fixed stem and head around a list of searchable `Slot`s; an `Arch` is
one op per slot. The space owns all the rules (sampling, mutation, crossover,
neighbourhoods, feature vectors, which distinct cells exist and their LUT keys), so a
search strategy never looks inside the encoding (the once-for-all habit of keeping
`random_sample_arch`/`mutate_arch` next to the encoder).

Pure Python and numpy: nothing here imports torch, so predictors and the board-side
tools can use spaces.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np


class ArchError(ValueError):
    """An arch string or op tuple that the space does not accept; the message says where."""


@dataclass(frozen=True, slots=True)
class Arch:
    """One op per slot of a space: a frozen, hashable value.

    The canonical string form is the space's (`Space.encode`/`Space.decode`), because a
    space such as NAS-Bench-201 has its own published notation.

    Example:
        >>> Arch(("k3e6-relu", "skip")).ops
        ('k3e6-relu', 'skip')
    """

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.ops, tuple) or not all(isinstance(o, str) for o in self.ops):
            raise ArchError("Arch.ops must be a tuple of op names (str)")

    def __len__(self) -> int:
        return len(self.ops)


@dataclass(frozen=True, slots=True)
class Shape:
    """Channels and spatial size of a feature map (square maps only)."""

    ch: int
    res: int

    def key(self) -> str:
        return f"{self.res}x{self.res}x{self.ch}"

    def nchw(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.ch, self.res, self.res)


@dataclass(frozen=True, slots=True)
class Slot:
    """A searchable position: fixed shapes, a list of candidate ops."""

    name: str
    choices: tuple[str, ...]
    in_shape: Shape
    out_shape: Shape
    stride: int

    def index(self, op: str) -> int:
        try:
            return self.choices.index(op)
        except ValueError:
            raise ArchError(
                f"slot {self.name}: op {op!r} is not allowed here "
                f"(allowed: {', '.join(self.choices)})"
            ) from None


@dataclass(frozen=True, slots=True)
class Cell:
    """A distinct op + shape combination: the unit a latency lookup table stores.

    `kind` is "cell" for searchable ops, "stem"/"head"/"fixed" for the fixed parts. `op` is the
    op name in the space's vocabulary (or the fixed part's name); `params` carries
    whatever a builder needs beyond the shapes (e.g. the stem's width).
    """

    key: str
    kind: str
    op: str
    in_shape: Shape
    out_shape: Shape
    stride: int
    params: tuple[tuple[str, object], ...] = field(default=())


class Space(ABC):
    """A search space: stem and head fixed, `slots` searchable.

    Subclasses set `name` and `slots`, and implement `params`, `encode`/`decode`,
    `fixed_cells`, `slot_cells` and `default`. Everything else (sampling, mutation,
    crossover, neighbours, features, cells and LUT keys, size) is shared.
    """

    name: str
    slots: tuple[Slot, ...]

    @property
    @abstractmethod
    def params(self) -> dict[str, object]:
        """The constructor parameters, enough to rebuild this space with `get_space`."""

    @abstractmethod
    def encode(self, arch: Arch) -> str:
        """The canonical string of `arch` (validated first)."""

    @abstractmethod
    def decode(self, text: str) -> Arch:
        """Parse a canonical string; raises `ArchError` naming the slot and problem."""

    @abstractmethod
    def fixed_cells(self) -> list[Cell]:
        """The cells every arch has (stem, head, fixed blocks), with repeats."""

    @abstractmethod
    def slot_cells(self, slot: int, op: str) -> list[Cell]:
        """The cells that choosing `op` in slot `slot` adds (with repeats; none for a skip)."""

    @abstractmethod
    def default(self) -> Arch:
        """A reasonable fixed arch (used to fill the slots a stage does not search)."""

    def cells(self) -> list[Cell]:
        """Every distinct cell of the space (stem and head included), each once, in order."""
        seen: dict[str, Cell] = {}
        for cell in self.fixed_cells():
            seen.setdefault(cell.key, cell)
        for i, slot in enumerate(self.slots):
            for op in slot.choices:
                for cell in self.slot_cells(i, op):
                    seen.setdefault(cell.key, cell)
        return list(seen.values())

    def cell_keys(self, arch: Arch) -> list[str]:
        """The LUT keys whose latencies add up to `arch`'s (with repeats, skips add none)."""
        self.validate(arch)
        keys = [c.key for c in self.fixed_cells()]
        for i, op in enumerate(arch.ops):
            keys.extend(c.key for c in self.slot_cells(i, op))
        return keys

    # --- validation -------------------------------------------------------------------

    def validate(self, arch: Arch) -> Arch:
        """Return `arch` if every op is allowed in its slot, else raise `ArchError`."""
        if not isinstance(arch, Arch):
            raise ArchError(f"expected an Arch, got {type(arch).__name__}")
        if len(arch.ops) != len(self.slots):
            raise ArchError(
                f"{self.name}: arch has {len(arch.ops)} ops, the space has {len(self.slots)} slots"
            )
        for slot, op in zip(self.slots, arch.ops, strict=True):
            slot.index(op)
        return arch

    def contains(self, arch: Arch) -> bool:
        try:
            self.validate(arch)
        except ArchError:
            return False
        return True

    # --- index form (vectorised work: features, predictors) ---------------------------

    @property
    def num_choices(self) -> tuple[int, ...]:
        return tuple(len(s.choices) for s in self.slots)

    def to_indices(self, archs: Sequence[Arch]) -> np.ndarray:
        """Choice index per slot, shape (len(archs), len(slots)), dtype int64."""
        out = np.empty((len(archs), len(self.slots)), dtype=np.int64)
        for row, arch in enumerate(archs):
            self.validate(arch)
            out[row] = [s.choices.index(op) for s, op in zip(self.slots, arch.ops, strict=True)]
        return out

    def from_indices(self, idx: Sequence[int]) -> Arch:
        if len(idx) != len(self.slots):
            raise ArchError(f"{self.name}: {len(idx)} indices for {len(self.slots)} slots")
        ops = []
        for slot, i in zip(self.slots, idx, strict=True):
            if not 0 <= int(i) < len(slot.choices):
                raise ArchError(f"slot {slot.name}: choice index {i} out of range")
            ops.append(slot.choices[int(i)])
        return Arch(tuple(ops))

    def features(self, arch: Arch) -> np.ndarray:
        """One-hot per slot, concatenated: a float vector of length `sum(num_choices)`."""
        return self.features_batch([arch])[0]

    def features_batch(self, archs: Sequence[Arch]) -> np.ndarray:
        """`features` for many archs at once, shape (len(archs), sum(num_choices))."""
        idx = self.to_indices(archs)
        offsets = np.concatenate([[0], np.cumsum(self.num_choices)[:-1]])
        out = np.zeros((len(archs), int(sum(self.num_choices))), dtype=np.float32)
        rows = np.arange(len(archs))[:, None]
        out[rows, idx + offsets] = 1.0
        return out

    # --- the rules strategies use ------------------------------------------------------

    def size(self) -> float:
        """log10 of the number of architectures."""
        return float(sum(math.log10(n) for n in self.num_choices))

    def sample(self, rng: np.random.Generator) -> Arch:
        """A uniformly random arch (each slot independently uniform)."""
        return Arch(tuple(s.choices[int(rng.integers(len(s.choices)))] for s in self.slots))

    def mutate(self, arch: Arch, rng: np.random.Generator, *, prob: float = 0.1) -> Arch:
        """Resample each slot with probability `prob` to a different op; at least one changes.

        Slots with a single choice are never picked. Raises `ArchError` if no slot can
        change (a space with one arch).
        """
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {prob}")
        self.validate(arch)
        free = [i for i, s in enumerate(self.slots) if len(s.choices) > 1]
        if not free:
            raise ArchError(f"{self.name}: no slot has more than one choice, nothing to mutate")
        picked = [i for i in free if rng.random() < prob] or [free[int(rng.integers(len(free)))]]
        ops = list(arch.ops)
        for i in picked:
            others = [c for c in self.slots[i].choices if c != ops[i]]
            ops[i] = others[int(rng.integers(len(others)))]
        return Arch(tuple(ops))

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """Uniform crossover: each slot's op from `a` or `b` with equal probability."""
        self.validate(a)
        self.validate(b)
        take_a = rng.random(len(self.slots)) < 0.5
        return Arch(tuple(x if t else y for x, y, t in zip(a.ops, b.ops, take_a, strict=True)))

    def neighbours(self, arch: Arch) -> list[Arch]:
        """Every arch that differs from `arch` in exactly one slot."""
        self.validate(arch)
        out = []
        for i, slot in enumerate(self.slots):
            for op in slot.choices:
                if op != arch.ops[i]:
                    out.append(Arch((*arch.ops[:i], op, *arch.ops[i + 1 :])))
        return out

    def op_factors(self, slot: int) -> tuple[dict[str, str], ...] | None:
        """How each choice of slot `slot` factors into sub-choices, or None if it does not.

        One dict per choice, in choice order, mapping a factor name to its value (e.g.
        `{"block": "mbconv", "kernel": "5", ...}`; a skip has only `{"block": "skip"}`).
        Distinct choices have distinct dicts. FP-NAS's coarse-to-fine strategy reads it to
        build its factorised distribution; the default is no factorisation.
        """
        if not 0 <= slot < len(self.slots):
            raise ArchError(f"{self.name}: no slot {slot}")
        return None

    def restrict(self, choices: dict[int, Iterable[str]]) -> Space:
        """A copy of this space whose slots `i` allow only `choices[i]` (order kept).

        Used by the hardware-tailored generator to keep a few device-friendly ops per slot.
        """
        return RestrictedSpace(self, choices)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


class RestrictedSpace(Space):
    """A space with fewer choices in some slots; encoding, cells and keys are the parent's."""

    def __init__(self, parent: Space, choices: dict[int, Iterable[str]]) -> None:
        # Restricting a restriction keeps pointing at the full space, which owns the
        # encoding, the cells and the network layout.
        self.parent = parent.parent if isinstance(parent, RestrictedSpace) else parent
        self.name = parent.name
        slots = list(parent.slots)
        for i, ops in choices.items():
            if not 0 <= i < len(slots):
                raise ArchError(f"{parent.name}: no slot {i} to restrict")
            wanted = set(ops)
            for op in wanted:
                slots[i].index(op)
            kept = tuple(c for c in slots[i].choices if c in wanted)
            if not kept:
                raise ArchError(f"slot {slots[i].name}: restriction leaves no op")
            slots[i] = Slot(slots[i].name, kept, slots[i].in_shape, slots[i].out_shape,
                            slots[i].stride)
        self.slots = tuple(slots)

    @property
    def params(self) -> dict[str, object]:
        return self.parent.params

    def encode(self, arch: Arch) -> str:
        return self.parent.encode(self.validate(arch))

    def decode(self, text: str) -> Arch:
        return self.validate(self.parent.decode(text))

    def fixed_cells(self) -> list[Cell]:
        return self.parent.fixed_cells()

    def slot_cells(self, slot: int, op: str) -> list[Cell]:
        return self.parent.slot_cells(slot, op)

    def op_factors(self, slot: int) -> tuple[dict[str, str], ...] | None:
        full = self.parent.op_factors(slot)
        if full is None:
            return None
        parent_choices = self.parent.slots[slot].choices
        return tuple(full[parent_choices.index(op)] for op in self.slots[slot].choices)

    def default(self) -> Arch:
        ops = [op if op in slot.choices else slot.choices[0]
               for slot, op in zip(self.slots, self.parent.default().ops, strict=True)]
        return Arch(tuple(ops))
