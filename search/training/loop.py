"""Plain supervised training and evaluation of one network, and the pieces shared with
the supernet loop: thread control, feature extraction, accuracy.

The fixed short schedule of the proxy-quality harness's ground truth is `train_net`:
SGD with Nesterov momentum, cosine learning rate over a given number of steps, batches
drawn at random (with a seeded generator) from the train split.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models import recalibrate_bn
from search.data import Dataset, to_resolution


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with `torch.set_num_threads(threads)` (None: leave as is)."""
    if threads is None:
        yield
        return
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# glibc's mallopt parameters (malloc.h); these two are not in Python's standard library.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@functools.cache
def keep_freed_memory() -> bool:
    """Have this process's glibc malloc keep freed memory instead of handing it back to
    the OS, once; True where that took (glibc), False elsewhere (macOS, musl: a no-op).

    A training step or a ZiCo gradient frees hundreds of MB of activations at once; by
    default glibc then trims the top of its heap (and serves blocks over its dynamic
    mmap threshold with fresh mappings), so the next step faults every page back in,
    zero-filled by the kernel: ~24,000 faults an arch in ZiCo on 32 px mbv2 at width 0.25
    on the 2-core VMs. With the mmap threshold at its glibc maximum (32 MiB) and the trim
    threshold at 1 GiB they fall to ~1,600 (~0 once the heap has grown to the largest
    net's needs), and ZiCo takes a median 0.90x the time (`benchmarks/zico_malloc.py`,
    each way in fresh processes). The price: the process keeps up to 1 GiB of
    freed heap mapped; the setting is process-wide and stays (PyTorch's CPU tuning guide
    gets the same with jemalloc or tcmalloc, which would need LD_PRELOAD at start).
    """
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD,
                                                                        1 << 30))


def channels_last(net: nn.Module) -> nn.Module:
    """`net`, in place, with its 4-D weights in channels_last memory format.

    oneDNN's CPU convolutions, above all the depthwise weight gradient, run about twice
    as fast in that layout (`benchmarks/train_speed.py`), and a convolution whose weight
    is channels_last gives a channels_last output, so the images need no conversion. Same
    math: only the float32 rounding of batch norm's statistics differs (`search.
    estimators.zico`). Convert before building the optimizer.
    """
    return net.to(memory_format=torch.channels_last)


def random_batch(data: Dataset, batch_size: int, rng: np.random.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch_size` distinct train images drawn with `rng` (all of them if fewer)."""
    n = len(data.y_train)
    idx = torch.from_numpy(rng.choice(n, size=min(batch_size, n), replace=False))
    return data.x_train[idx], data.y_train[idx]


def features(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The pooled features a `models.Net` (or a supernet's net) feeds its classifier."""
    x = net.layers(net.stem(x))
    for module in list(net.head)[:-1]:
        x = module(x)
    return x


@torch.no_grad()
def evaluate(net: nn.Module, data: Dataset, *, batch_size: int = 256,
             resolution: int | None = None) -> float:
    """Top-1 accuracy on the val split, in eval mode (train/eval mode restored), with the
    images resized to `resolution` when given."""
    was = net.training
    net.eval()
    correct = 0
    try:
        for x, y in data.val_batches(batch_size):
            if resolution is not None:
                x = to_resolution(x, resolution)
            correct += int((net(x).argmax(1) == y).sum())
    finally:
        net.train(was)
    return correct / len(data.y_val)


def train_net(net: nn.Module, data: Dataset, *, steps: int, batch_size: int = 64,
              lr: float = 0.05, weight_decay: float = 5e-4, seed: int = 0) -> float:
    """Train `net` for `steps` SGD steps (cosine LR) and return its val accuracy.

    Before evaluation the BN running statistics are re-estimated on 8 train batches
    (`models.recalibrate_bn`): after a short schedule the running averages still carry the
    first steps' activations, and eval-mode accuracy falls to chance without it.
    The batches depend only on `seed`, so two nets trained with the same seed see the same
    images in the same order. `net` is left in channels_last (`channels_last`).
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    rng = np.random.default_rng(seed)
    keep_freed_memory()
    channels_last(net)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True,
                          weight_decay=weight_decay)
    net.train()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = 0.5 * lr * (1 + math.cos(math.pi * step / steps))
        x, y = random_batch(data, batch_size, rng)
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    recalibrate_bn(net, (random_batch(data, batch_size, rng)[0] for _ in range(8)))
    return evaluate(net, data)
