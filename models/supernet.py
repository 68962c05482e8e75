"""The weight-sharing supernet: one path active at a time, subnets extracted with weights.

Single Path One-Shot (Guo et al., "Single Path One-Shot Neural Architecture Search with
Uniform Sampling", ECCV 2020), the supernet HURRICANE trains: every slot holds all of its
candidate ops with their own weights (`Choice`), shared by every architecture that picks
them; `set_active(arch)` selects one path, and `extract(arch)` returns the standalone
network with the chosen ops' weights copied, whose outputs equal the supernet's on that
path.

For BN-NAS (Chen et al., "BN-NAS: Neural Architecture Search with Batch Normalization",
ICCV 2021), `op_bns()` names each candidate op's last BN layer, the one whose |gamma|
is its indicator (the BN after the final pointwise conv of an MBConv); ops without a BN
(skip, pooling) have none.
"""

from __future__ import annotations

import torch
from torch import nn

from spaces import Arch, Space

from .builder import MakeOp, Net, build, layout


class Choice(nn.Module):
    """All candidate ops of slot `slot`; runs the `active` one."""

    def __init__(self, slot: int, options: dict[str, nn.Module]) -> None:
        super().__init__()
        self.slot = slot
        self.options = nn.ModuleDict(options)
        self.active: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.active is None:
            raise RuntimeError(f"slot {self.slot}: no active op; call set_active(arch) first")
        return self.options[self.active](x)

    def active_module(self) -> nn.Module:
        if self.active is None:
            raise RuntimeError(f"slot {self.slot}: no active op; call set_active(arch) first")
        return self.options[self.active]


class Supernet(nn.Module):
    """SPOS supernet of a space.

    Example:
        >>> import numpy as np
        >>> from spaces import get_space
        >>> space = get_space("mbv2", resolution=32, width=0.5, classes=10)
        >>> sup = Supernet(space)
        >>> arch = space.sample(np.random.default_rng(0))
        >>> sup.set_active(arch)
        >>> sub = sup.extract(arch)
    """

    def __init__(self, space: Space) -> None:
        super().__init__()
        self.space = space

        def pick(slot: int, make: MakeOp) -> nn.Module:
            return Choice(slot, {op: make(op) for op in space.slots[slot].choices})

        self.net: Net = layout(space, pick)
        self.choices = [m for m in self.net.modules() if isinstance(m, Choice)]
        self.active: Arch | None = None

    def set_active(self, arch: Arch) -> None:
        """Route every forward through `arch`'s ops from now on."""
        self.space.validate(arch)
        for choice in self.choices:
            choice.active = arch.ops[choice.slot]
        self.active = arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def active_parameters(self) -> list[nn.Parameter]:
        """Parameters used by the active path (what one SPOS step updates)."""
        return list(self._active_state(self.net, "", params_only=True).values())

    def op_bns(self) -> dict[tuple[int, str], nn.BatchNorm2d]:
        """(slot, op) -> that candidate op's last BN layer, for every op that has one."""
        out: dict[tuple[int, str], nn.BatchNorm2d] = {}
        for choice in self.choices:
            for op, module in choice.options.items():
                bn = last_bn(module)
                if bn is not None:
                    out[(choice.slot, op)] = bn
        return out

    def extract(self, arch: Arch) -> Net:
        """The standalone net of `arch` with this supernet's weights and BN statistics.

        The copy is strict: every parameter and buffer of the standalone net comes from
        the supernet, so a layout change that breaks the correspondence raises here.
        """
        self.set_active(arch)
        net = build(self.space, arch)
        state = {k: v.detach().clone() for k, v in self._active_state(self.net, "").items()}
        net.load_state_dict(state, strict=True)
        return net.train(self.training)

    @classmethod
    def _active_state(cls, module: nn.Module, prefix: str, *, params_only: bool = False
                      ) -> dict[str, torch.Tensor]:
        # Walk the tree, descending into a Choice's active option without its own name, so
        # the keys are the standalone net's.
        if isinstance(module, Choice):
            return cls._active_state(module.active_module(), prefix, params_only=params_only)
        out: dict[str, torch.Tensor] = dict(
            (prefix + n, p) for n, p in module.named_parameters(recurse=False))
        if not params_only:
            out.update((prefix + n, b) for n, b in module.named_buffers(recurse=False))
        for name, child in module.named_children():
            out.update(cls._active_state(child, f"{prefix}{name}.", params_only=params_only))
        return out


def last_bn(module: nn.Module) -> nn.BatchNorm2d | None:
    """The last `BatchNorm2d` of `module` in definition order, or None if it has none."""
    found = None
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            found = m
    return found
