"""The Pi-NAS objective: cross-path consistency plus a mean teacher with negatives.

Peng et al., "Pi-NAS: Improving Neural Architecture Search by Reducing Supernet Training
Consistency Shift", ICCV 2021. Per step, two paths a1, a2 are sampled and both run on
the same (augmented) batch; their projected features are pulled together (the
cross-path consistency term, against feature shift). A mean teacher, the EMA of the
supernet and its projector, embeds a second augmentation of the batch through the
*other* path, and each student embedding is matched to its teacher key against the
other keys of the batch and a queue of earlier keys (InfoNCE, MoCo-style, against
parameter shift). No labels are used.

Departures: the projector is one linear layer plus a normalisation (the paper uses an
MLP head on ResNet-scale features); augmentation is a random shift of up to 1/8 of the
image plus a small scale change (the data here are small digits, not ImageNet crops);
the consistency term is the cosine distance of the two paths' embeddings.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models import Supernet

from .checkpoint import TrainSettings
from .loop import features


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per-image random translation (up to 1/8 of the side) and scale (0.9-1.1)."""
    n = x.shape[0]
    shift = (torch.rand(n, 2, generator=gen) - 0.5) * 0.25
    scale = 0.9 + 0.2 * torch.rand(n, generator=gen)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = scale
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)


def info_nce(q: torch.Tensor, k: torch.Tensor, negatives: torch.Tensor,
             temperature: float) -> torch.Tensor:
    """InfoNCE of unit vectors: row i of `q` should match row i of `k` against the other
    rows of `k` and the `negatives`."""
    logits = q @ torch.cat([k, negatives]).T / temperature
    return F.cross_entropy(logits, torch.arange(len(q)))


class PiNAS(nn.Module):
    """Projector, mean teacher and negative queue around a supernet."""

    def __init__(self, supernet: Supernet, settings: TrainSettings) -> None:
        super().__init__()
        self.settings = settings
        self.projector = nn.Linear(_feature_dim(supernet), settings.proj_dim)
        self.teacher = copy.deepcopy(supernet)
        self.teacher_projector = copy.deepcopy(self.projector)
        for p in [*self.teacher.parameters(), *self.teacher_projector.parameters()]:
            p.requires_grad_(False)
        self.register_buffer("negatives", torch.zeros(0, settings.proj_dim))

    def embed(self, net: Supernet, projector: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(projector(features(net.net, x)), dim=1)

    def loss(self, supernet: Supernet, x: torch.Tensor, rng: np.random.Generator,
             gen: torch.Generator) -> torch.Tensor:
        """The step's loss; samples two paths with `rng` and augmentations with `gen`."""
        s = self.settings
        a1, a2 = supernet.space.sample(rng), supernet.space.sample(rng)
        x1, x2 = augment(x, gen), augment(x, gen)
        supernet.set_active(a1)
        z1 = self.embed(supernet, self.projector, x1)
        supernet.set_active(a2)
        z2 = self.embed(supernet, self.projector, x1)
        with torch.no_grad():
            self.teacher.set_active(a2)
            k1 = self.embed(self.teacher, self.teacher_projector, x2)
            self.teacher.set_active(a1)
            k2 = self.embed(self.teacher, self.teacher_projector, x2)
        negatives = self.negatives
        contrast = (info_nce(z1, k1, negatives, s.temperature)
                    + info_nce(z2, k2, negatives, s.temperature)) / 2
        consistency = (1 - (z1 * z2).sum(1)).mean()
        if s.queue:
            self.negatives = torch.cat([k1, k2, negatives])[: s.queue].detach()
        return contrast + s.consistency * consistency

    @torch.no_grad()
    def update_teacher(self, supernet: Supernet) -> None:
        """teacher <- ema * teacher + (1 - ema) * student (BN buffers copied)."""
        ema = self.settings.ema
        for student, teacher in ((supernet, self.teacher),
                                 (self.projector, self.teacher_projector)):
            for ps, pt in zip(student.parameters(), teacher.parameters(), strict=True):
                pt.mul_(ema).add_(ps.detach(), alpha=1 - ema)
            for bs, bt in zip(student.buffers(), teacher.buffers(), strict=True):
                bt.copy_(bs)

    def extra_state(self) -> dict[str, Any]:
        return {"pi": self.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.negatives = state["pi"]["negatives"].clone()
        self.load_state_dict(state["pi"])


def _feature_dim(supernet: Supernet) -> int:
    supernet.set_active(supernet.space.default())
    was = supernet.training
    supernet.eval()
    try:
        with torch.no_grad():
            return int(features(supernet.net, supernet.net.example_input(2)).shape[1])
    finally:
        supernet.train(was)
