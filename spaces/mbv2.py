"""The MobileNetV2-style space of HURRICANE and ProxylessNAS.

Zhang et al., "Fast Hardware-Aware Neural Architecture Search" (CVPRW 2020) and Cai et
al., "ProxylessNAS: Direct Neural Architecture Search on Target Task and Hardware"
(ICLR 2019). Layout as ProxylessNAS-mobile: a 3x3 conv stem (32 ch) and a fixed
MBConv-k3-e1 to 16 ch, then 21 searchable MBConv slots in six stages of widths
24/40/80/96/192/320 (4/4/4/4/4/1 slots, first-slot strides 2/2/2/1/2/1), then a 1x1
conv to 1280, global pooling and a classifier.

Candidate ops per slot: MBConv with kernel 3/5/7 x expansion 1/3/6 x squeeze-excite
on/off x ReLU/h-swish (36 ops, the HURRICANE operator pool), plus `skip` on every slot
whose input and output shapes match (all but each stage's first): 21 slots, 36 or 37
choices, about 10^32.8 architectures.

Departure, for small inputs: below 64 px (the 32x32 accuracy-estimation setting) the
stem and the first stage keep stride 1, as CIFAR variants of MobileNetV2 do; otherwise
a 32 px input would shrink to 1x1 by the fourth stage. The arch strings are the same at
every resolution, so an arch searched at 32 px builds and deploys at 224 px.

Arch string: one op per slot, comma separated, e.g. `k3e6-relu,skip,k5e3-se-hswish,...`;
the grammar is in docs/formats.md.
"""

from __future__ import annotations

import re

from .base import Arch, ArchError, Cell, Shape, Slot, Space
from .registry import register_space

KERNELS = (3, 5, 7)
EXPANSIONS = (1, 3, 6)
ACTS = ("relu", "hswish")
SKIP = "skip"
STEM_CH = 32
FIRST_CH = 16
HEAD_CH = 1280
# (out channels, slots, stride of the stage's first slot): ProxylessNAS-mobile.
STAGES = ((24, 4, 2), (40, 4, 2), (80, 4, 2), (96, 4, 1), (192, 4, 2), (320, 1, 1))
SMALL_INPUT = 64

_OP_RE = re.compile(r"^k(?P<k>\d+)e(?P<e>\d+)(?P<se>-se)?-(?P<act>[a-z]+)$")


def mbconv_op(kernel: int, expand: int, se: bool, act: str) -> str:
    """The op name of an MBConv choice: `mbconv_op(5, 6, True, "hswish")` is `k5e6-se-hswish`."""
    return f"k{kernel}e{expand}{'-se' if se else ''}-{act}"


def parse_op(op: str) -> tuple[int, int, bool, str]:
    """(kernel, expand, se, act) of an MBConv op name; raises `ArchError` for anything else."""
    m = _OP_RE.match(op)
    if (not m or int(m["k"]) not in KERNELS or int(m["e"]) not in EXPANSIONS
            or m["act"] not in ACTS):
        raise ArchError(
            f"{op!r} is not an mbv2 op "
            "(expected 'skip' or k{3,5,7}e{1,3,6}[-se]-{relu,hswish})"
        )
    return int(m["k"]), int(m["e"]), m["se"] is not None, m["act"]


MBCONV_OPS = tuple(
    mbconv_op(k, e, se, act)
    for k in KERNELS for e in EXPANSIONS for se in (False, True) for act in ACTS
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of `divisor`, never below 90% of `value` (MobileNet rule)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def _out_res(res: int, stride: int) -> int:
    # Same as a conv with padding k//2: ceil(res / stride).
    return -(-res // stride)


@register_space("mbv2")
class MBV2Space(Space):
    """HURRICANE/ProxylessNAS MobileNetV2 space.

    Args:
        resolution: input height and width (224 for deployment, 32 for small data).
        width: width multiplier applied to every stage (channels rounded to 8).
        classes: number of output classes.

    Example:
        >>> space = MBV2Space(resolution=32)
        >>> len(space.slots), round(space.size(), 1)
        (21, 32.8)
    """

    name = "mbv2"

    def __init__(self, resolution: int = 224, width: float = 1.0, classes: int = 1000) -> None:
        if not isinstance(resolution, int) or resolution < 8:
            raise ValueError(f"resolution must be an integer >= 8, got {resolution!r}")
        if not isinstance(width, int | float) or not 0.1 <= width <= 4.0:
            raise ValueError(f"width must be a number in [0.1, 4], got {width!r}")
        if not isinstance(classes, int) or classes < 1:
            raise ValueError(f"classes must be a positive integer, got {classes!r}")
        self.resolution = resolution
        self.width = float(width)
        self.classes = classes
        small = resolution < SMALL_INPUT
        stem_stride = 1 if small else 2
        self.stem_ch = make_divisible(STEM_CH * self.width)
        self.first_ch = make_divisible(FIRST_CH * self.width)
        self.head_ch = make_divisible(HEAD_CH * max(1.0, self.width))
        self.input_shape = Shape(3, resolution)
        self.stem_out = Shape(self.first_ch, _out_res(resolution, stem_stride))
        self.stem_stride = stem_stride
        slots = []
        shape = self.stem_out
        for stage, (ch, count, first_stride) in enumerate(STAGES):
            out_ch = make_divisible(ch * self.width)
            for i in range(count):
                stride = (1 if small and stage == 0 else first_stride) if i == 0 else 1
                out = Shape(out_ch, _out_res(shape.res, stride))
                choices = MBCONV_OPS + ((SKIP,) if out == shape and stride == 1 else ())
                slots.append(Slot(f"s{stage + 1}.{i}", choices, shape, out, stride))
                shape = out
        self.slots = tuple(slots)
        self.last_shape = shape

    @property
    def params(self) -> dict[str, object]:
        return {"resolution": self.resolution, "width": self.width, "classes": self.classes}

    def encode(self, arch: Arch) -> str:
        return ",".join(self.validate(arch).ops)

    def decode(self, text: str) -> Arch:
        if not isinstance(text, str) or not text.strip():
            raise ArchError("mbv2 arch string is empty")
        ops = tuple(op.strip() for op in text.strip().split(","))
        if len(ops) != len(self.slots):
            raise ArchError(
                f"mbv2 arch string has {len(ops)} ops, the space has {len(self.slots)} slots"
            )
        for slot, op in zip(self.slots, ops, strict=True):
            if op != SKIP:
                try:
                    parse_op(op)
                except ArchError as err:
                    raise ArchError(f"slot {slot.name}: {err}") from None
            slot.index(op)
        return Arch(ops)

    def default(self) -> Arch:
        """MobileNetV2's own choice in every slot: k3, expansion 6, no SE, ReLU."""
        return Arch(tuple(mbconv_op(3, 6, False, "relu") for _ in self.slots))

    def op_factors(self, slot: int) -> tuple[dict[str, str], ...] | None:
        """Each MBConv choice as block, kernel, expansion, SE and activation; skip as a block."""
        super().op_factors(slot)
        out = []
        for op in self.slots[slot].choices:
            if op == SKIP:
                out.append({"block": SKIP})
                continue
            k, e, se, act = parse_op(op)
            out.append({"block": "mbconv", "kernel": str(k), "expand": str(e),
                        "se": "on" if se else "off", "act": act})
        return tuple(out)

    def fixed_cells(self) -> list[Cell]:
        shape = self.input_shape
        stem = Cell(
            key=f"stem-c{self.stem_ch}-c{self.first_ch}-in{shape.key()}-out{self.stem_out.key()}"
            f"-s{self.stem_stride}",
            kind="stem", op="stem", in_shape=shape, out_shape=self.stem_out,
            stride=self.stem_stride, params=(("mid_ch", self.stem_ch),),
        )
        last = self.last_shape
        head = Cell(
            key=f"head-c{self.head_ch}-in{last.key()}-out{self.classes}",
            kind="head", op="head", in_shape=last, out_shape=Shape(self.classes, 1),
            stride=1, params=(("mid_ch", self.head_ch),),
        )
        return [stem, head]

    def slot_cells(self, slot: int, op: str) -> list[Cell]:
        s = self.slots[slot]
        s.index(op)
        if op == SKIP:
            return []
        k, e, se, act = parse_op(op)
        key = (f"mbconv-k{k}-e{e}{'-se' if se else ''}-{act}"
               f"-in{s.in_shape.key()}-out{s.out_shape.key()}-s{s.stride}")
        return [Cell(key, "cell", op, s.in_shape, s.out_shape, s.stride)]
