"""Rewrites a network so that its TFLite file keeps XNNPACK's fast depthwise kernels.

LiteRT's XNNPACK delegate runs a depthwise convolution of up to 25 filter taps (5x5)
quickly and a larger one (7x7: 49 taps) very slowly. Measured here with LiteRT 2.3.0 at 1
thread, one depthwise conv + BN + ReLU at 56x56x96: 5x5 0.69 ms fp32 / 0.69 ms int8, 7x7
10.6 ms fp32 / 59.7 ms int8. Written as a sum of row bands of at most 25 taps each (3x7,
3x7, 1x7), each a convolution of the same input, the 7x7 file takes 1.8 ms fp32 and
1.9 ms int8. `benchmarks/int8_export.py` times whole archs both ways.

The rewrite is exact in real arithmetic: each band applies its rows of the filter to the
input rows those filter rows see, so the bands' sum is the full convolution. fp32
results differ only by summation order; in int8 each band's partial sum is requantised
before the adds (the same per-tensor spec as every other activation).

ONNX Runtime and OpenVINO keep the plain convolution: neither has this cliff.
"""

from __future__ import annotations

import copy
from typing import TypeGuard

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

# The largest depthwise filter XNNPACK runs fast: 5x5 is fast, 7x7 is not.
MAX_TAPS = 25


class BandedDepthwise(nn.Module):
    """A depthwise `nn.Conv2d` ('same' zero padding) as a sum of row bands of its filter."""

    def __init__(self, conv: nn.Conv2d, *, max_taps: int = MAX_TAPS) -> None:
        super().__init__()
        kh, kw = conv.kernel_size
        if kw > max_taps:
            raise ValueError(f"a {kh}x{kw} filter has rows wider than {max_taps} taps")
        rows = max_taps // kw
        self.bands = [(start, min(start + rows, kh)) for start in range(0, kh, rows)]
        self.stride, self.padding, self.groups = conv.stride, conv.padding, conv.groups
        self.weight = nn.Parameter(conv.weight.detach().clone())
        self.bias = (nn.Parameter(conv.bias.detach().clone()) if conv.bias is not None
                     else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (ph, pw), (sh, sw) = self.padding, self.stride
        height, kh = x.shape[2], self.weight.shape[2]
        out_h = (height + 2 * ph - kh) // sh + 1
        y: torch.Tensor | None = None
        for start, stop in self.bands:
            # Output row i of the full convolution reads input rows sh*i - top onwards with
            # this band's filter rows. The band runs with symmetric row padding `pad`
            # (>= what it needs above and below, and congruent to `top` modulo the stride)
            # and its rows `skip..skip+out_h` are kept. An explicit F.pad would instead
            # stay in NCHW in litert-torch's layout pass, wrapped in two transposes.
            top = ph - start
            bottom = sh * (out_h - 1) + (stop - start) - top - height
            pad = max(top, bottom, 0)
            pad += (top - pad) % sh
            skip = (pad - top) // sh
            part = F.conv2d(x, self.weight[:, :, start:stop], self.bias if y is None else None,
                            stride=(sh, sw), padding=(pad, pw), groups=self.groups)
            part = part[:, :, skip:skip + out_h]
            y = part if y is None else y + part
        assert y is not None
        return y


def _is_wide_depthwise(module: nn.Module, max_taps: int) -> TypeGuard[nn.Conv2d]:
    if not isinstance(module, nn.Conv2d):
        return False
    kh, kw = module.kernel_size
    # A filter row wider than `max_taps` cannot be banded; it is left as it is.
    return (module.groups == module.in_channels == module.out_channels and kh * kw > max_taps
            and kw <= max_taps
            and module.dilation == (1, 1) and module.padding_mode == "zeros"
            and isinstance(module.padding, tuple))


def xnnpack_ready(module: nn.Module, *, max_taps: int = MAX_TAPS) -> nn.Module:
    """An eval-mode copy of `module` with every depthwise conv of more than `max_taps` taps
    as a `BandedDepthwise`; a BatchNorm2d right after it (as in `conv_bn`) is folded into
    it first, so that no float BN is left between the bands' sum and the activation."""
    out = copy.deepcopy(module).eval()
    for parent in out.modules():
        children = list(parent.named_children())
        for i, (name, child) in enumerate(children):
            if not _is_wide_depthwise(child, max_taps):
                continue
            follower = children[i + 1] if i + 1 < len(children) else None
            if isinstance(parent, nn.Sequential) and follower is not None and isinstance(
                    follower[1], nn.BatchNorm2d):
                child = fuse_conv_bn_eval(child, follower[1])
                setattr(parent, follower[0], nn.Identity())
            setattr(parent, name, BandedDepthwise(child, max_taps=max_taps))
    return out
