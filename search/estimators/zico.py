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
init_weights`) rather than PyTorch's defaults; statistics are computed in torch float64
from the float32 gradients instead of numpy float32; the squeeze-excite 1x1 convolutions
count, as they would in the released code, since they are Conv2d layers. Every arch is
scored on the same N batches, and its weights are initialised from `seed`, so a score is
deterministic for a given CPU and per-batch thread count (`ZiCo` runs its batches one
after the other on its threads, or with `side_by_side` each in a thread of its own:
`zico_score`).

Speed: `ZiCo` runs the net and images in channels_last memory format, where oneDNN's
convolution kernels (above all the depthwise weight-gradient) are about twice as fast on
CPU, and asks autograd for the counted weights' gradients only. The math is unchanged (in
float64 both layouts give the same score to 1e-6: tests/search/test_zico.py); the float32
rounding is not. PyTorch's channels_last batch norm on CPU sums its statistics less
precisely (~1e-6 relative error against ~1e-7 in NCHW); a net at initialisation amplifies
rounding through its ~60 BN layers (float32 gradients 0.2-1% from float64 in NCHW, 3-13%
in channels_last, in norm per layer at batch 16); and ZiCo with N = 2 amplifies it again:
a weight's ratio is (|g1| + |g2|) / |g1 - g2|, up to 1e4-1e5 where the two gradients
nearly agree, so it rests on their last bits. Any float32 ZiCo (the released one on cuDNN
included) is therefore about 1% from the exact score. On 12 random archs (32 px, batch
64) the NCHW float32 score was 0.63% from float64 on average at width 0.25 (max 1.8%,
Kendall tau 0.97 to the float64 ranking) and the channels_last one 0.82% (max 2.3%, tau
0.94); at width 0.5, 0.62% and 0.92% (tau 0.97 both); NCHW and channels_last were 0.88%
and 0.62% apart (tau 0.97, 1.00). `benchmarks/zico_cost.py --float64-check 12` reproduces
these.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models import build
from search.data import Dataset, check_compatible, load_dataset
from search.training.loop import channels_last, keep_freed_memory, random_batch, torch_threads
from spaces import Arch, Space

from .registry import register_estimator


def _check_threads(threads: int | None) -> None:
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValueError(f"threads must be a positive integer, got {threads!r}")


def _counted(net: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def _gradient(net: nn.Module, weights: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor,
              threads: int | None = None) -> torch.Tensor:
    """`weights`' gradient on one batch, flat (`threads`: torch's, in this thread)."""
    if threads is not None:
        torch.set_num_threads(threads)
    # Only the counted weights: autograd then skips the BN and bias weight-gradients. A
    # weight the loss does not reach gets zeros, so its std is 0 and its layer drops out,
    # as a layer without gradients does in the released code.
    grads = torch.autograd.grad(F.cross_entropy(net(x), y), weights, materialize_grads=True)
    return torch.cat([g.reshape(-1) for g in grads])


def zico_score(net: nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], *,
               threads: int | None = None) -> float:
    """ZiCo of `net` over `batches` (at least 2 (images, labels) pairs).

    With `threads` (None: one after the other, on torch's threads as they are set), the
    batches run `min(threads, len(batches))` at a time, each in a thread of its own with
    `threads // that` torch threads and a copy of the net. Whether that pays depends on
    the host (`benchmarks/zico_cost.py --threads 2` times both ways on 10 archs a width,
    32 px, batch 64, 2 cores): on one 2-core VM, two single-threaded batches at once took
    0.53-0.55 s an arch at width 0.25 against 0.61-0.64 s in sequence on 2 threads; on
    another, 0.44 against 0.46 s at width 0.25 but 1.34 against 0.65 s at width 0.5 and
    2.07 against 1.36 s at width 1.0 (two copies of the larger nets' activations share
    the caches). Each batch's gradient is computed as it would be alone, so the score
    equals the sequential one at that per-batch thread count. The net is left in train
    mode; its
    `.grad` fields are not touched. On CPU, a net and images in `torch.channels_last`
    score about twice as fast (see the module docstring).
    """
    if len(batches) < 2:
        raise ValueError(f"batches: ZiCo needs at least 2 mini-batches, got {len(batches)}")
    _check_threads(threads)
    weights = _counted(net)
    net.train()
    workers = 1 if threads is None else min(threads, len(batches))
    if workers == 1:
        with torch_threads(threads):
            rows = [_gradient(net, weights, x, y) for x, y in batches]
    else:
        # A copy per worker: train-mode BN updates its running statistics in place.
        nets = [net, *(copy.deepcopy(net) for _ in range(workers - 1))]

        def work(w: int) -> list[torch.Tensor]:
            counted = _counted(nets[w])
            return [_gradient(nets[w], counted, *batches[i], threads // workers)
                    for i in range(w, len(batches), workers)]

        before = torch.get_num_threads()
        try:
            with ThreadPoolExecutor(workers) as pool:
                done = list(pool.map(work, range(workers)))
        finally:
            # torch.set_num_threads in a worker also sets the count new threads start with.
            torch.set_num_threads(before)
        rows = [done[i % workers][i // workers] for i in range(len(batches))]
    g = torch.stack(rows).double()
    mean = g.mean(dim=0)
    # Population std written out: Tensor.std over dim 0 of an (N, P) tensor is ~20x
    # slower on CPU.
    std = (g - mean).square().mean(dim=0).sqrt()
    ratio = torch.where(std > 0, g.abs().mean(dim=0) / std, 0.0)
    sums = torch.stack([r.sum() for r in ratio.split([w.numel() for w in weights])])
    return float(sums[sums != 0].log().sum())


@register_estimator("zico")
class ZiCo:
    """ZiCo scores of `space`'s nets on `batches` mini-batches of `data`, on `threads`
    torch threads (None: as set), the batches one after the other, or with `side_by_side`
    in threads of their own (`zico_score`: faster on some hosts for the smallest nets,
    twice as slow on others for larger ones; one after the other is the safe default)."""

    def __init__(self, space: Space, *, data: Dataset | None = None, batch_size: int = 64,
                 batches: int = 2, seed: int = 0, threads: int | None = None,
                 side_by_side: bool = False) -> None:
        if not isinstance(batches, int) or batches < 2:
            raise ValueError(f"batches must be an integer >= 2, got {batches!r}")
        _check_threads(threads)
        self.space = space
        self.data = data if data is not None else load_dataset(
            None, resolution=int(space.params.get("resolution", 32)), seed=seed)
        check_compatible(self.data, space.params)
        self.batch_size = batch_size
        self.n_batches = batches
        self.seed = seed
        self.threads = threads
        self.side_by_side = side_by_side
        rng = np.random.default_rng(seed)
        self.batches = [(x.contiguous(memory_format=torch.channels_last), y)
                        for x, y in (random_batch(self.data, batch_size, rng)
                                     for _ in range(batches))]

    def score(self, archs: Sequence[Arch]) -> np.ndarray:
        keep_freed_memory()
        out = []
        side = (self.threads or torch.get_num_threads()) if self.side_by_side else None
        with torch_threads(None if self.side_by_side else self.threads):
            for arch in archs:
                with torch.random.fork_rng():
                    torch.manual_seed(self.seed)
                    net = build(self.space, arch)
                out.append(zico_score(channels_last(net),
                                      self.batches, threads=side))
        return np.asarray(out, dtype=np.float64)

    def describe(self) -> str:
        return (f"zico: sum over Conv2d/Linear layers of log(sum |E g| / std g) over "
                f"{self.n_batches} batches of {self.batch_size} from {self.data.source}, at "
                f"init (seed {self.seed}); Li et al., ICLR 2023, released-code variant.")
