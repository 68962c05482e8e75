"""ZiCo: the zero-shot proxy from the inverse coefficient of variation of gradients.

Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients",
ICLR 2023 (code: SLDGroup/ZiCo, `ZeroShotProxy/compute_zico.py`). For a net at
initialisation, train mode, cross-entropy loss, the gradient of every weight is taken on
N mini-batches; per layer l,

    zico_l = log( sum over weights w with std(g_w) > 0 of mean(|g_w|) / std(g_w) )

and the score is the sum over layers. As in the released code: only `Conv2d` and
`Linear` weights count (no BN, no biases); the mean is of |g| but the standard deviation
(population, ddof 0) is of the raw g; weights whose std is 0 are dropped; a layer whose
sum is 0 is skipped; N = 2 batches.

Departures: the nets use this project's MobileNetV2 initialisation (`models.blocks.
init_weights`) rather than PyTorch's defaults; statistics are computed in torch float32
instead of numpy; the squeeze-excite 1x1 convolutions count, as they would in the
released code, since they are Conv2d layers. Every arch is scored on the same N batches,
and its weights are initialised from `seed`, so a score is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models import build
from search.data import Dataset, check_compatible, load_dataset
from search.training.loop import random_batch, torch_threads
from spaces import Arch, Space

from .registry import register_estimator


def zico_score(net: nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """ZiCo of `net` over `batches` (at least 2); the net's gradients are left zeroed."""
    if len(batches) < 2:
        raise ValueError(f"batches: ZiCo needs at least 2 mini-batches, got {len(batches)}")
    layers = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    grads: list[list[torch.Tensor]] = [[] for _ in layers]
    net.train()
    for x, y in batches:
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        for i, layer in enumerate(layers):
            if layer.weight.grad is not None:
                grads[i].append(layer.weight.grad.detach().reshape(-1).clone())
    net.zero_grad(set_to_none=True)
    total = 0.0
    for g in grads:
        if len(g) < 2:
            continue
        stacked = torch.stack(g)
        std = stacked.std(dim=0, unbiased=False)
        keep = std > 0
        ratio = float((stacked.abs().mean(dim=0)[keep] / std[keep]).sum())
        if ratio != 0.0:
            total += float(np.log(ratio))
    return total


@register_estimator("zico")
class ZiCo:
    """ZiCo scores of `space`'s nets on `batches` mini-batches of `data`."""

    def __init__(self, space: Space, *, data: Dataset | None = None, batch_size: int = 64,
                 batches: int = 2, seed: int = 0, threads: int | None = None) -> None:
        if not isinstance(batches, int) or batches < 2:
            raise ValueError(f"batches must be an integer >= 2, got {batches!r}")
        self.space = space
        self.data = data if data is not None else load_dataset(
            None, resolution=int(space.params.get("resolution", 32)), seed=seed)
        check_compatible(self.data, space.params)
        self.batch_size = batch_size
        self.n_batches = batches
        self.seed = seed
        self.threads = threads
        rng = np.random.default_rng(seed)
        self.batches = [random_batch(self.data, batch_size, rng) for _ in range(batches)]

    def score(self, archs: Sequence[Arch]) -> np.ndarray:
        out = []
        with torch_threads(self.threads):
            for arch in archs:
                with torch.random.fork_rng():
                    torch.manual_seed(self.seed)
                    net = build(self.space, arch)
                out.append(zico_score(net, self.batches))
        return np.asarray(out, dtype=np.float64)

    def describe(self) -> str:
        return (f"zico: sum over Conv2d/Linear layers of log(sum |E g| / std g) over "
                f"{self.n_batches} batches of {self.batch_size} from {self.data.source}, at "
                f"init (seed {self.seed}); Li et al., ICLR 2023, released-code variant.")
