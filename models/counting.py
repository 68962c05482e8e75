"""Parameter and FLOP counts of a network (the naive proxies ZiCo is compared against).

FLOPs come from torch's own `torch.utils.flop_counter.FlopCounterMode`, which counts a
multiply-add as 2 FLOPs and covers convolutions (grouped and depthwise included) and
matrix multiplies; element-wise ops, pooling and activations are not counted, as in the
FLOP figures NAS papers report (which usually quote MACs = FLOPs / 2).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with `requires_grad`)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def count_flops(module: nn.Module, example: torch.Tensor) -> int:
    """FLOPs of one forward pass on `example` (multiply-add = 2), in eval mode."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            module(example)
    finally:
        module.train(was_training)
    return int(counter.get_total_flops())
