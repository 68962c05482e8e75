"""ZiCo's fast path against a straightforward reference (the first implementation).

`ZiCo` scores in channels_last with gradients of the counted weights only and float64
statistics; the reference below stores every gradient, in NCHW, with float32 statistics.
In the same layout the two give the same score. Across layouts the float32 scores differ
by about 1% (rounding, amplified by ZiCo: see `search/estimators/zico.py`), so the
layouts are compared in float64, where they agree to 1e-6.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models import build
from search.data import load_dataset
from search.estimators import get_estimator, zico_score
from search.training.loop import random_batch, torch_threads
from spaces import Arch
from tests.conftest import small_space

SPACE = small_space("mbv2")
ARCHS = [SPACE.default(), *(SPACE.sample(np.random.default_rng(i)) for i in range(3))]
IDS = ["default", "random0", "random1", "random2"]
Batches = Sequence[tuple[torch.Tensor, torch.Tensor]]


@pytest.fixture(scope="module")
def batches() -> Batches:
    data = load_dataset(None, resolution=32, seed=0)
    rng = np.random.default_rng(0)
    return [random_batch(data, 16, rng) for _ in range(2)]


def reference_zico(net: nn.Module, batches: Batches) -> float:
    layers = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    grads: list[list[torch.Tensor]] = [[] for _ in layers]
    net.train()
    for x, y in batches:
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        for i, layer in enumerate(layers):
            grads[i].append(layer.weight.grad.detach().reshape(-1).clone())
    total = 0.0
    for g in grads:
        stacked = torch.stack(g)
        std = stacked.std(dim=0, unbiased=False)
        keep = std > 0
        ratio = float((stacked.abs().mean(dim=0)[keep] / std[keep]).sum())
        if ratio != 0.0:
            total += float(np.log(ratio))
    return total


def fresh(arch: Arch, *, dtype: torch.dtype = torch.float32,
          channels_last: bool = False) -> nn.Module:
    torch.manual_seed(0)
    net = build(SPACE, arch).to(dtype)
    return net.to(memory_format=torch.channels_last) if channels_last else net


def as_layout(batches: Batches, *, dtype: torch.dtype = torch.float32,
              channels_last: bool = False) -> Batches:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return [(x.to(dtype).contiguous(memory_format=fmt), y) for x, y in batches]


@pytest.mark.parametrize("arch", ARCHS, ids=IDS)
def test_same_layout_same_score(arch: Arch, batches: Batches) -> None:
    assert zico_score(fresh(arch), batches) == pytest.approx(
        reference_zico(fresh(arch), batches), rel=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS, ids=IDS)
def test_channels_last_same_score_in_float64(arch: Arch, batches: Batches) -> None:
    # Batch 4: float64 convolutions have no oneDNN kernel and are slow.
    small = [(x[:4], y[:4]) for x, y in batches]
    ref = reference_zico(fresh(arch, dtype=torch.float64),
                         as_layout(small, dtype=torch.float64))
    fast = zico_score(fresh(arch, dtype=torch.float64, channels_last=True),
                      as_layout(small, dtype=torch.float64, channels_last=True))
    assert fast == pytest.approx(ref, rel=1e-6)
    # The float32 fast path, what `ZiCo` runs, is within float32's band of it.
    fast32 = zico_score(fresh(arch, channels_last=True), as_layout(small, channels_last=True))
    assert fast32 == pytest.approx(ref, rel=0.05)


def test_estimator_is_the_channels_last_score() -> None:
    data = load_dataset(None, resolution=32, seed=0)
    est = get_estimator("zico", space=SPACE, data=data, batch_size=16, seed=0, threads=2)
    with torch_threads(2):
        assert est.score(ARCHS[:1]).tolist() == [
            zico_score(fresh(ARCHS[0], channels_last=True), est.batches)]
    side = get_estimator("zico", space=SPACE, data=data, batch_size=16, seed=0, threads=2,
                         side_by_side=True)
    assert side.score(ARCHS[:1]).tolist() == [
        zico_score(fresh(ARCHS[0], channels_last=True), est.batches, threads=2)]
    assert all(x.is_contiguous(memory_format=torch.channels_last) for x, _ in est.batches)
    with pytest.raises(ValueError, match="threads must be a positive integer, got 0"):
        get_estimator("zico", space=SPACE, data=data, threads=0)


def test_batches_side_by_side_score_as_one_thread_in_sequence(batches: Batches) -> None:
    # Two and three batches over two workers (the third goes to the first worker after
    # its first batch): each batch's gradient is the one it has alone on one thread.
    three = [*batches, (batches[0][0].flip(0), batches[1][1])]
    before = torch.get_num_threads()
    for group in (batches, three):
        images = as_layout(group, channels_last=True)
        with torch_threads(1):
            alone = zico_score(fresh(ARCHS[1], channels_last=True), images)
        assert zico_score(fresh(ARCHS[1], channels_last=True), images, threads=2) == alone
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        zico_score(fresh(ARCHS[0]), batches, threads=0)
