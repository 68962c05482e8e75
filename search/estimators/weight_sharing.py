"""Estimators read from a trained supernet: the BN-NAS indicator and subnet accuracy.

- `bn`: Chen et al., "BN-NAS: Neural Architecture Search with Batch Normalization", ICCV
  2021 (code: bychen515/BNNAS). An op's indicator is the mean |gamma| of its last BN
  layer (after the final pointwise conv); an arch's score is the sum over its slots.
  Departure: a `skip` (no BN) adds 0, where BN-NAS's space has no skip-only choice
  without a BN; the score therefore also rewards depth.
- `supernet`: the SPOS evaluation (Guo et al., ECCV 2020): the subnet's path is made
  active, its BN statistics are recalibrated on `calib_batches` train batches (as SPOS
  and once-for-all do), and its top-1 accuracy on the val split is the score. For a
  Pi-NAS checkpoint, whose classifier was never trained (no labels), the accuracy is a
  nearest-class-mean probe on the pooled features, with class means from the same
  calibration batches: labels are used at evaluation only.

Both load the checkpoint written by `search.training.train_supernet`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models import Supernet, recalibrate_bn
from search.data import Dataset, check_compatible, load_dataset
from search.training.checkpoint import CheckpointMeta
from search.training.loop import features, random_batch, torch_threads
from search.training.supernet import load_supernet
from spaces import Arch, Space

from .registry import register_estimator


def _load(space: Space, checkpoint: str | Path) -> tuple[CheckpointMeta, Supernet]:
    meta, supernet = load_supernet(checkpoint)
    if meta.space != space.name or meta.params != space.params:
        raise ValueError(f"checkpoint {checkpoint}: trained on space {meta.space} "
                         f"{meta.params}, not {space.name} {space.params}")
    return meta, supernet


@register_estimator("bn")
class BNIndicator:
    """BN-NAS score: sum over slots of mean |gamma| of the chosen op's last BN."""

    def __init__(self, space: Space, *, checkpoint: str | Path) -> None:
        self.space = space
        self.checkpoint = str(checkpoint)
        self.meta, supernet = _load(space, checkpoint)
        self.table = {key: float(bn.weight.detach().abs().mean())
                      for key, bn in supernet.op_bns().items()}

    def score(self, archs: Sequence[Arch]) -> np.ndarray:
        out = []
        for arch in archs:
            self.space.validate(arch)
            out.append(sum(self.table.get((i, op), 0.0) for i, op in enumerate(arch.ops)))
        return np.asarray(out, dtype=np.float64)

    def describe(self) -> str:
        return (f"bn: BN-NAS indicator (Chen et al., ICCV 2021), sum over slots of the "
                f"chosen op's last-BN mean |gamma|, skip = 0; supernet {self.checkpoint} "
                f"({self.meta.settings.mode}, {self.meta.step} steps).")


@register_estimator("supernet")
class SupernetAccuracy:
    """Val accuracy of each subnet with the supernet's weights, after BN recalibration."""

    def __init__(self, space: Space, *, checkpoint: str | Path, data: Dataset | None = None,
                 calib_batches: int = 8, batch_size: int = 64, seed: int = 0,
                 threads: int | None = None) -> None:
        if not isinstance(calib_batches, int) or calib_batches < 1:
            raise ValueError(f"calib_batches must be a positive integer, got {calib_batches!r}")
        self.space = space
        self.checkpoint = str(checkpoint)
        self.meta, self.supernet = _load(space, checkpoint)
        self.data = data if data is not None else load_dataset(
            None, resolution=int(space.params.get("resolution", 32)), seed=seed)
        check_compatible(self.data, space.params)
        rng = np.random.default_rng(seed)
        self.calib = [random_batch(self.data, batch_size, rng) for _ in range(calib_batches)]
        self.threads = threads

    @torch.no_grad()
    def _accuracy(self, arch: Arch) -> float:
        sup = self.supernet
        sup.set_active(self.space.validate(arch))
        recalibrate_bn(sup, (x for x, _ in self.calib))
        sup.eval()
        if self.meta.settings.mode != "pi":
            correct = sum(int((sup(x).argmax(1) == y).sum())
                          for x, y in self.data.val_batches(256))
            return correct / len(self.data.y_val)
        feats = torch.cat([F.normalize(features(sup.net, x), dim=1) for x, _ in self.calib])
        labels = torch.cat([y for _, y in self.calib])
        means = torch.zeros(self.data.classes, feats.shape[1]).index_add_(0, labels, feats)
        means = F.normalize(means, dim=1)
        correct = 0
        for x, y in self.data.val_batches(256):
            pred = (F.normalize(features(sup.net, x), dim=1) @ means.T).argmax(1)
            correct += int((pred == y).sum())
        return correct / len(self.data.y_val)

    def score(self, archs: Sequence[Arch]) -> np.ndarray:
        with torch_threads(self.threads):
            return np.asarray([self._accuracy(a) for a in archs], dtype=np.float64)

    def describe(self) -> str:
        probe = "nearest-class-mean probe" if self.meta.settings.mode == "pi" else "classifier"
        return (f"supernet: val accuracy ({probe}) of the subnet in supernet "
                f"{self.checkpoint} ({self.meta.settings.mode}, {self.meta.step} steps) after "
                f"BN recalibration on {len(self.calib)} train batches (SPOS evaluation).")
