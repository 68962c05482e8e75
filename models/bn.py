"""Batch-norm recalibration: running statistics re-estimated from data.

A subnet taken from a supernet, or a freshly initialised net, carries BN running
statistics that do not match its own activations (SPOS and once-for-all recalibrate
before evaluating a subnet for this reason). Without it an untrained net in eval mode
can lose its signal entirely: its logits become the classifier bias, whatever the input.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def recalibrate_bn(module: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Reset every BN layer's running mean/var and re-estimate them on `batches`.

    Statistics are a plain average over the batches (momentum None), weights are left
    untouched, and the module's train/eval modes are restored afterwards.

    Returns:
        The number of batches used.

    Raises:
        ValueError: `batches` is empty, or the module has no BN layer.
    """
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        raise ValueError("recalibrate_bn: the module has no batch-norm layer")
    modes = {m: m.training for m in module.modules()}
    momenta = {bn: bn.momentum for bn in bns}
    count = 0
    try:
        module.eval()
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
        with torch.no_grad():
            for batch in batches:
                module(batch)
                count += 1
    finally:
        for bn, momentum in momenta.items():
            bn.momentum = momentum
        for m, training in modes.items():
            m.train(training)
    if count == 0:
        raise ValueError("recalibrate_bn: no batches given")
    return count
