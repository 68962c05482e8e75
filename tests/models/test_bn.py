"""BN recalibration: statistics from data, weights and modes untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import build, recalibrate_bn
from tests.conftest import small_space


def test_running_stats_are_the_data_average() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
    weight = net[0].weight.clone()
    batches = [torch.randn(8, 3, 6, 6) * 3 + 1 for _ in range(3)]
    assert recalibrate_bn(net, batches) == 3
    with torch.no_grad():
        feats = [net[0](b) for b in batches]
    expected = torch.stack([f.mean((0, 2, 3)) for f in feats]).mean(0)
    torch.testing.assert_close(net[1].running_mean, expected, rtol=1e-5, atol=1e-5)
    assert not net.training and not net[1].training
    assert net[1].momentum == 0.1
    assert torch.equal(net[0].weight, weight)


def test_recalibrated_untrained_net_depends_on_its_input() -> None:
    space = small_space("mbv2")
    torch.manual_seed(0)
    net = build(space, space.default()).eval()
    x = net.example_input(4)
    recalibrate_bn(net, [net.example_input(8) for _ in range(2)])
    with torch.no_grad():
        y = net(x)
    assert (y - y.mean(0)).norm() / y.norm() > 0.05


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="no batches"):
        recalibrate_bn(nn.BatchNorm2d(2), [])
    with pytest.raises(ValueError, match="no batch-norm"):
        recalibrate_bn(nn.Conv2d(2, 2, 1), [torch.zeros(1, 2, 2, 2)])
