"""The banded form of wide depthwise convolutions equals the convolution it replaces."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.blocks import MBConv, MBConvSpec
from models.xnnpack import MAX_TAPS, BandedDepthwise, xnnpack_ready


@pytest.mark.parametrize("kernel", [7, 9])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [5, 8, 15])
@pytest.mark.parametrize("bias", [False, True])
def test_bands_sum_to_the_convolution(kernel: int, stride: int, size: int, bias: bool) -> None:
    torch.manual_seed(kernel * 100 + stride * 10 + size)
    conv = nn.Conv2d(6, 6, kernel, stride, kernel // 2, groups=6, bias=bias)
    banded = BandedDepthwise(conv)
    assert all((stop - start) * kernel <= MAX_TAPS for start, stop in banded.bands)
    assert [r for band in banded.bands for r in range(*band)] == list(range(kernel))
    x = torch.randn(2, 6, size, size + 1)
    with torch.no_grad():
        torch.testing.assert_close(banded(x), conv(x), rtol=1e-5, atol=1e-5)


def _settled(block: nn.Module) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so that folding matters."""
    for m in block.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, 0.0, 0.2)
    block.train()
    with torch.no_grad():
        for _ in range(3):
            block(torch.randn(8, 16, 14, 14) * 1.3 + 0.2)
    return block.eval()


def test_ready_folds_the_bn_and_keeps_the_block_output() -> None:
    torch.manual_seed(0)
    block = _settled(MBConv(MBConvSpec(16, 16, 2, 7, 3, True, "hswish")))
    ready = xnnpack_ready(block)
    depthwise = ready.depthwise
    assert isinstance(depthwise[0], BandedDepthwise)
    assert isinstance(depthwise[1], nn.Identity)
    assert isinstance(block.depthwise[0], nn.Conv2d)  # the original is left as it was
    assert isinstance(block.depthwise[1], nn.BatchNorm2d)
    x = torch.randn(4, 16, 14, 14)
    with torch.no_grad():
        torch.testing.assert_close(ready(x), block(x), rtol=1e-4, atol=1e-5)


def test_ready_leaves_small_and_dense_convolutions_alone() -> None:
    block = MBConv(MBConvSpec(16, 16, 1, 5, 3, False, "relu"))
    dense = nn.Sequential(nn.Conv2d(4, 8, 7, padding=3), nn.BatchNorm2d(8))
    long_rows = nn.Conv2d(4, 4, (1, 27), padding=(0, 13), groups=4)
    for module in (block, dense, long_rows):
        ready = xnnpack_ready(module)
        assert not any(isinstance(m, BandedDepthwise) for m in ready.modules())
        assert sum(isinstance(m, nn.BatchNorm2d) for m in ready.modules()) == sum(
            isinstance(m, nn.BatchNorm2d) for m in module.modules())


def test_rows_wider_than_the_tap_limit_are_refused() -> None:
    conv = nn.Conv2d(4, 4, (1, 27), padding=(0, 13), groups=4)
    with pytest.raises(ValueError, match="wider than 25 taps"):
        BandedDepthwise(conv)
