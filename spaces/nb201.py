"""The NAS-Bench-201 / NATS-Bench topology search space (TSS).

Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture
Search" (ICLR 2020); Dong et al., "NATS-Bench" (TPAMI 2021). One cell, a DAG of 4 nodes
with an op on each of its 6 edges (5 ops: 5^6 = 15,625 archs), stacked N=5 times in
each of three stages of C, 2C, 4C channels, with a ResNet basic block (stride 2)
between stages; stem a 3x3 conv + BN, head BN-ReLU, global pooling and a classifier.

Arch strings are the benchmark's own, so published tables (NATS-Bench, HW-NAS-Bench)
join with hwnas results:
`|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|none~1|avg_pool_3x3~2|`
(node 1's inputs, then node 2's, then node 3's; `op~j` means "op applied to node j").

Lookup-table cells: every (op, stage) pair with shapes; `none` and `skip_connect` cost
no cell (they compute nothing), so an arch's LUT sum leaves out the additions at the
nodes, which the regression predictors fit as overhead.
"""

from __future__ import annotations

from .base import Arch, ArchError, Cell, Shape, Slot, Space
from .registry import register_space

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
FREE_OPS = ("none", "skip_connect")
# (to node, from node) in the benchmark's string order.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


@register_space("nb201")
class NB201Space(Space):
    """NAS-Bench-201 cell space.

    Args:
        resolution: input size (32 for CIFAR-10/100, 16 for ImageNet16-120).
        channels: C, the first stage's width (16 in the benchmark).
        cells: N, cells per stage (5 in the benchmark).
        classes: number of output classes.

    Example:
        >>> space = NB201Space()
        >>> text = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"
        >>> space.encode(space.decode(text)) == text
        True
        >>> round(10 ** space.size())
        15625
    """

    name = "nb201"

    def __init__(self, resolution: int = 32, channels: int = 16, cells: int = 5,
                 classes: int = 10) -> None:
        for field_name, value, low in (("resolution", resolution, 4), ("channels", channels, 1),
                                       ("cells", cells, 1), ("classes", classes, 1)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{field_name} must be an integer >= {low}, got {value!r}")
        self.resolution = resolution
        self.channels = channels
        self.cells_per_stage = cells
        self.classes = classes
        self.stage_shapes = tuple(
            Shape(channels * 2**i, -(-resolution // 2**i)) for i in range(3)
        )
        first = self.stage_shapes[0]
        self.slots = tuple(
            Slot(f"{to}<-{frm}", OPS, first, first, 1) for to, frm in EDGES
        )

    @property
    def params(self) -> dict[str, object]:
        return {"resolution": self.resolution, "channels": self.channels,
                "cells": self.cells_per_stage, "classes": self.classes}

    def encode(self, arch: Arch) -> str:
        ops = self.validate(arch).ops
        nodes, i = [], 0
        for to in (1, 2, 3):
            nodes.append("|" + "|".join(f"{ops[i + j]}~{j}" for j in range(to)) + "|")
            i += to
        return "+".join(nodes)

    def decode(self, text: str) -> Arch:
        if not isinstance(text, str) or not text.strip():
            raise ArchError("nb201 arch string is empty")
        nodes = text.strip().split("+")
        if len(nodes) != 3:
            raise ArchError(
                f"nb201 arch string has {len(nodes)} nodes separated by '+', expected 3 "
                "(e.g. |nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|none~1|none~2|)"
            )
        ops: list[str] = []
        for to, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|")):
                raise ArchError(f"nb201 node {to}: {node!r} must start and end with '|'")
            edges = node[1:-1].split("|")
            if len(edges) != to:
                raise ArchError(f"nb201 node {to}: has {len(edges)} inputs, expected {to}")
            for frm, edge in enumerate(edges):
                op, sep, src = edge.partition("~")
                if not sep or src != str(frm):
                    raise ArchError(
                        f"nb201 node {to}: input {edge!r} must be 'op~{frm}'"
                    )
                if op not in OPS:
                    raise ArchError(
                        f"nb201 edge {to}<-{frm}: op {op!r} is not allowed here "
                        f"(allowed: {', '.join(OPS)})"
                    )
                ops.append(op)
        return self.validate(Arch(tuple(ops)))

    def default(self) -> Arch:
        """The benchmark's ResNet cell: two 3x3 convs and a skip."""
        return self.decode(
            "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"
        )

    def fixed_cells(self) -> list[Cell]:
        inp = Shape(3, self.resolution)
        s1, s2, s3 = self.stage_shapes
        cells = [Cell(f"nb201-stem-in{inp.key()}-out{s1.key()}", "stem", "stem", inp, s1, 1)]
        for a, b in ((s1, s2), (s2, s3)):
            cells.append(Cell(f"nb201-resblock-in{a.key()}-out{b.key()}-s2", "fixed", "resblock",
                              a, b, 2))
        out = Shape(self.classes, 1)
        cells.append(Cell(f"nb201-head-in{s3.key()}-out{self.classes}", "head", "head", s3, out, 1))
        return cells

    def slot_cells(self, slot: int, op: str) -> list[Cell]:
        self.slots[slot].index(op)
        if op in FREE_OPS:
            return []
        return [
            Cell(f"nb201-{op}-in{shape.key()}-out{shape.key()}-s1", "cell", op, shape, shape, 1)
            for shape in self.stage_shapes
            for _ in range(self.cells_per_stage)
        ]
