"""Typed block specs and the torch modules they build.

Step two and three of "encoding -> block specs -> nn.Module": every block is described
by a frozen dataclass in one shared vocabulary (`in_ch, out_ch, stride, kernel, expand,
se, act`), and `build_block(spec)` turns any spec into a module. The profiling kit, the
standalone networks and the supernet all build their blocks here, so a cell measured on
a board is exactly the block the network runs.

MBConv follows MobileNetV2/V3 (Sandler et al. 2018; Howard et al. 2019): 1x1 expansion
(left out when expand == 1), depthwise kxk, optional squeeze-excite (reduction 4,
hard-sigmoid gate, as in MobileNetV3), 1x1 projection with BN and no activation, and a
residual when stride is 1 and shapes match. NAS-Bench-201's ops follow the benchmark's
code (ReLU-Conv-BN, 3x3 average pooling without padding in the count).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from spaces.mbv2 import make_divisible

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "hswish": nn.Hardswish}


def _act(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {name!r}") from None


def conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int, *, groups: int = 1,
            act: str | None = None) -> nn.Sequential:
    """Conv (no bias, 'same' padding) + BN (+ activation)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if act is not None:
        layers.append(_act(act))
    return nn.Sequential(*layers)


@dataclass(frozen=True, slots=True)
class MBConvSpec:
    in_ch: int
    out_ch: int
    stride: int
    kernel: int
    expand: int
    se: bool
    act: str


@dataclass(frozen=True, slots=True)
class StemSpec:
    """3x3 conv to `mid_ch` with `stride`, then a fixed MBConv-k3-e1 to `out_ch`."""

    in_ch: int
    mid_ch: int
    out_ch: int
    stride: int
    act: str = "relu"


@dataclass(frozen=True, slots=True)
class HeadSpec:
    """1x1 conv to `mid_ch`, global average pooling, linear classifier to `out_ch`."""

    in_ch: int
    mid_ch: int
    out_ch: int
    act: str = "relu"


@dataclass(frozen=True, slots=True)
class SkipSpec:
    ch: int


@dataclass(frozen=True, slots=True)
class NB201OpSpec:
    """One NAS-Bench-201 edge op on `ch` channels (stride 1 inside cells)."""

    op: str
    ch: int


@dataclass(frozen=True, slots=True)
class NB201StemSpec:
    in_ch: int
    out_ch: int


@dataclass(frozen=True, slots=True)
class ResBlockSpec:
    """NAS-Bench-201's reduction block: ResNet basic block, stride 2, pooled 1x1 shortcut."""

    in_ch: int
    out_ch: int


@dataclass(frozen=True, slots=True)
class NB201HeadSpec:
    in_ch: int
    out_ch: int


BlockSpec = (MBConvSpec | StemSpec | HeadSpec | SkipSpec | NB201OpSpec | NB201StemSpec
             | ResBlockSpec | NB201HeadSpec)


class SqueezeExcite(nn.Module):
    """MobileNetV3 squeeze-excite: pool, 1x1 reduce (ReLU), 1x1 expand, hard-sigmoid gate."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        mid = make_divisible(ch / 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(ch, mid, 1)
        self.act = nn.ReLU()
        self.expand = nn.Conv2d(mid, ch, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class MBConv(nn.Module):
    """Inverted residual block; `project[1]` is the BN that BN-NAS reads."""

    def __init__(self, spec: MBConvSpec) -> None:
        super().__init__()
        if spec.stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {spec.stride}")
        if spec.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd, got {spec.kernel}")
        mid = spec.in_ch * spec.expand
        self.expand = (conv_bn(spec.in_ch, mid, 1, 1, act=spec.act) if spec.expand != 1
                       else nn.Identity())
        self.depthwise = conv_bn(mid, mid, spec.kernel, spec.stride, groups=mid, act=spec.act)
        self.se = SqueezeExcite(mid) if spec.se else nn.Identity()
        self.project = conv_bn(mid, spec.out_ch, 1, 1)
        self.residual = spec.stride == 1 and spec.in_ch == spec.out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.residual else y


class Stem(nn.Sequential):
    def __init__(self, spec: StemSpec) -> None:
        super().__init__(
            conv_bn(spec.in_ch, spec.mid_ch, 3, spec.stride, act=spec.act),
            MBConv(MBConvSpec(spec.mid_ch, spec.out_ch, 1, 3, 1, False, spec.act)),
        )


class Head(nn.Sequential):
    def __init__(self, spec: HeadSpec) -> None:
        super().__init__(
            conv_bn(spec.in_ch, spec.mid_ch, 1, 1, act=spec.act),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(spec.mid_ch, spec.out_ch),
        )


class Zero(nn.Module):
    """NAS-Bench-201's `none`: the edge contributes nothing (cells leave it out)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


class ReLUConvBN(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(out_ch),
        )


def nb201_op(spec: NB201OpSpec) -> nn.Module:
    ops = {
        "none": Zero,
        "skip_connect": nn.Identity,
        "nor_conv_1x1": lambda: ReLUConvBN(spec.ch, spec.ch, 1, 1),
        "nor_conv_3x3": lambda: ReLUConvBN(spec.ch, spec.ch, 3, 1),
        "avg_pool_3x3": lambda: nn.AvgPool2d(3, 1, 1, count_include_pad=False),
    }
    if spec.op not in ops:
        raise ValueError(f"unknown nb201 op {spec.op!r} (known: {', '.join(ops)})")
    return ops[spec.op]()


class ResBlock(nn.Module):
    def __init__(self, spec: ResBlockSpec) -> None:
        super().__init__()
        self.a = ReLUConvBN(spec.in_ch, spec.out_ch, 3, 2)
        self.b = ReLUConvBN(spec.out_ch, spec.out_ch, 3, 1)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, 2), nn.Conv2d(spec.in_ch, spec.out_ch, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.b(self.a(x))


def init_weights(module: nn.Module) -> None:
    """MobileNetV2's initialisation (as torchvision's): He-normal fan-out convs, unit BN,
    N(0, 0.01) classifier with zero bias. PyTorch's defaults shrink the signal through 20+
    blocks until the logits are the classifier bias, whatever the input."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def build_block(spec: BlockSpec) -> nn.Module:
    """The module for any block spec.

    Example:
        >>> block = build_block(MBConvSpec(16, 24, 2, 5, 6, True, "hswish"))
        >>> block(torch.zeros(1, 16, 32, 32)).shape
        torch.Size([1, 24, 16, 16])
    """
    match spec:
        case MBConvSpec():
            return MBConv(spec)
        case StemSpec():
            return Stem(spec)
        case HeadSpec():
            return Head(spec)
        case SkipSpec():
            return nn.Identity()
        case NB201OpSpec():
            return nb201_op(spec)
        case NB201StemSpec():
            return nn.Sequential(nn.Conv2d(spec.in_ch, spec.out_ch, 3, 1, 1, bias=False),
                                 nn.BatchNorm2d(spec.out_ch))
        case ResBlockSpec():
            return ResBlock(spec)
        case NB201HeadSpec():
            return nn.Sequential(nn.BatchNorm2d(spec.in_ch), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten(), nn.Linear(spec.in_ch, spec.out_ch))
    raise TypeError(f"no block for spec {spec!r}")
