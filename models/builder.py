"""Networks from (space, arch): standalone nets, supernets, and single cells.

Each space family registers one layout function. It receives a `pick(slot, make)`
callback and calls it wherever a searchable op goes; `make(op)` builds that op's module.
For a standalone net `pick` builds the arch's op; for a supernet it builds a `Choice`
holding every candidate. One layout therefore serves both, and a subnet extracted from
the supernet has exactly the standalone net's parameter names.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from spaces import Arch, Cell, Space
from spaces.mbv2 import SKIP, MBV2Space, parse_op
from spaces.nb201 import EDGES, NB201Space

from .blocks import (
    BlockSpec,
    HeadSpec,
    MBConvSpec,
    NB201HeadSpec,
    NB201OpSpec,
    NB201StemSpec,
    ResBlockSpec,
    SkipSpec,
    StemSpec,
    Zero,
    build_block,
    init_weights,
)

MakeOp = Callable[[str], nn.Module]
Pick = Callable[[int, MakeOp], nn.Module]
Layout = Callable[[Space, Pick], "Net"]

_LAYOUTS: dict[str, Layout] = {}
_CELL_SPECS: dict[str, Callable[[Space, Cell], BlockSpec]] = {}


class Net(nn.Sequential):
    """stem -> layers -> head, with the input shape it was built for."""

    def __init__(self, stem: nn.Module, layers: list[nn.Module], head: nn.Module,
                 input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.stem = stem
        self.layers = nn.Sequential(*layers)
        self.head = head
        self.input_shape = input_shape
        init_weights(self)

    def example_input(self, batch: int = 1) -> torch.Tensor:
        """A random input of the shape this net was built for (NCHW)."""
        return torch.randn(batch, *self.input_shape)


def register_family(name: str, cell_spec: Callable[[Space, Cell], BlockSpec]
                    ) -> Callable[[Layout], Layout]:
    """Register the layout and cell-to-spec mapping of the space family `name`."""

    def wrap(layout: Layout) -> Layout:
        _LAYOUTS[name] = layout
        _CELL_SPECS[name] = cell_spec
        return layout

    return wrap


def _require_family(space: Space) -> None:
    # Checked before calling into a family, so a KeyError raised inside a layout is not
    # mistaken for a missing builder.
    if space.name not in _LAYOUTS:
        raise ValueError(f"no network builder for space {space.name!r}")


def layout(space: Space, pick: Pick) -> Net:
    _require_family(space)
    return _LAYOUTS[space.name](space, pick)


def build(space: Space, arch: Arch) -> Net:
    """The standalone network of `arch` (randomly initialised, train mode).

    Example:
        >>> from spaces import get_space
        >>> space = get_space("mbv2", resolution=32, classes=10)
        >>> net = build(space, space.default())
        >>> net(net.example_input(2)).shape
        torch.Size([2, 10])
    """
    space.validate(arch)
    return layout(space, lambda slot, make: make(arch.ops[slot]))


def cell_spec(space: Space, cell: Cell) -> BlockSpec:
    """The block spec of one LUT cell of `space`."""
    _require_family(space)
    return _CELL_SPECS[space.name](space, cell)


def build_cell(space: Space, cell: Cell) -> nn.Module:
    """The module a profiling kit measures for `cell` (eval mode)."""
    module = build_block(cell_spec(space, cell))
    init_weights(module)
    return module.eval()


def _mbv2_cell_spec(space: Space, cell: Cell) -> BlockSpec:
    params = dict(cell.params)
    if cell.kind == "stem":
        return StemSpec(cell.in_shape.ch, int(params["mid_ch"]), cell.out_shape.ch, cell.stride)
    if cell.kind == "head":
        return HeadSpec(cell.in_shape.ch, int(params["mid_ch"]), cell.out_shape.ch)
    if cell.op == SKIP:
        return SkipSpec(cell.in_shape.ch)
    k, e, se, act = parse_op(cell.op)
    return MBConvSpec(cell.in_shape.ch, cell.out_shape.ch, cell.stride, k, e, se, act)


def _base(space: Space, cls: type[Space]) -> Space:
    """`space` itself, or the space it restricts, checked to be of family `cls`."""
    base = getattr(space, "parent", space)
    if not isinstance(base, cls):
        raise TypeError(f"expected a {cls.name} space, got {type(base).__name__}")
    return base


@register_family("mbv2", _mbv2_cell_spec)
def _mbv2_layout(space: Space, pick: Pick) -> Net:
    base = _base(space, MBV2Space)
    stem_cell, head_cell = base.fixed_cells()

    def make_for(slot: int) -> MakeOp:
        def make(op: str) -> nn.Module:
            cells = base.slot_cells(slot, op)
            return build_block(_mbv2_cell_spec(base, cells[0])) if cells else nn.Identity()

        return make

    layers = [pick(i, make_for(i)) for i in range(len(space.slots))]
    return Net(build_block(_mbv2_cell_spec(base, stem_cell)), layers,
               build_block(_mbv2_cell_spec(base, head_cell)),
               (3, stem_cell.in_shape.res, stem_cell.in_shape.res))


class InferCell(nn.Module):
    """A NAS-Bench-201 cell: node i sums its input edges' ops; `none` edges are left out."""

    def __init__(self, edges: list[nn.Module]) -> None:
        super().__init__()
        self.edges = nn.ModuleList(edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for to in (1, 2, 3):
            terms = [self.edges[e](nodes[frm]) for e, (dst, frm) in enumerate(EDGES)
                     if dst == to and not isinstance(self.edges[e], Zero)]
            nodes.append(torch.stack(terms).sum(0) if len(terms) > 1 else
                         terms[0] if terms else torch.zeros_like(x))
        return nodes[3]


def _nb201_cell_spec(space: Space, cell: Cell) -> BlockSpec:
    if cell.kind == "stem":
        return NB201StemSpec(cell.in_shape.ch, cell.out_shape.ch)
    if cell.op == "resblock":
        return ResBlockSpec(cell.in_shape.ch, cell.out_shape.ch)
    if cell.kind == "head":
        return NB201HeadSpec(cell.in_shape.ch, cell.out_shape.ch)
    return NB201OpSpec(cell.op, cell.in_shape.ch)


@register_family("nb201", _nb201_cell_spec)
def _nb201_layout(space: Space, pick: Pick) -> Net:
    base = _base(space, NB201Space)
    stem, res1, res2, head = base.fixed_cells()
    layers: list[nn.Module] = []
    for stage, shape in enumerate(base.stage_shapes):
        if stage:
            layers.append(build_block(_nb201_cell_spec(space, (res1, res2)[stage - 1])))
        for _ in range(base.cells_per_stage):
            edges = [pick(e, lambda op, ch=shape.ch: build_block(NB201OpSpec(op, ch)))
                     for e in range(len(EDGES))]
            layers.append(InferCell(edges))
    return Net(build_block(_nb201_cell_spec(space, stem)), layers,
               build_block(_nb201_cell_spec(space, head)),
               (3, base.resolution, base.resolution))
