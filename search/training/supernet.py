"""Supernet training: SPOS, BN-NAS (BN-only) and Pi-NAS (unsupervised) modes.

- `spos`: Single Path One-Shot (Guo et al., ECCV 2020), the supernet HURRICANE trains:
  each step samples one path uniformly, and SGD updates the weights on it with the
  cross-entropy loss.
- `bn`: BN-NAS (Chen et al., ICCV 2021): `warmup_steps` SPOS steps, then only the affine
  parameters (gamma, beta) of every candidate op's last BN layer are trained, on sampled
  paths, with all other weights frozen; a subnet is then scored by its BN indicator
  (`search.estimators.BNIndicator`). Departure: BN-NAS trains BN parameters from random
  init for a few epochs; the short SPOS warm-up (as the brief of this project asks) gives
  the frozen convolutions some signal first on small data.
- `pi`: Pi-NAS (Peng et al., ICCV 2021), see `search.training.pinas`: no labels.

The learning rate is constant (a time budget gives no known horizon for a schedule). A
run stops at `steps`, at `minutes` of training time (counted over resumed runs too), or
when `cancel()` returns True; it checkpoints every `checkpoint_every_s` seconds and at
the end, with the optimizer, step and random states, so `resume=True` continues the
same stream of paths and batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models import Supernet
from search.data import Dataset, check_compatible
from spaces import Space

from .checkpoint import CheckpointMeta, TrainSettings, load_checkpoint, save_checkpoint
from .loop import channels_last, keep_freed_memory, random_batch
from .pinas import PiNAS


@dataclass(frozen=True)
class TrainProgress:
    """Where a run stands: `fraction` of its budget (steps or time, whichever is nearer)."""

    step: int
    seconds: float
    loss: float
    fraction: float


ProgressFn = Callable[[TrainProgress], None]
CancelFn = Callable[[], bool]


def bn_parameters(supernet: Supernet) -> list[nn.Parameter]:
    """The BN-NAS trainable set: gamma and beta of every candidate op's last BN."""
    return [p for bn in supernet.op_bns().values() for p in (bn.weight, bn.bias)]


class _Run:
    """The mutable state of one training run: model, optimizer, random streams."""

    def __init__(self, space: Space, settings: TrainSettings) -> None:
        self.settings = settings
        torch.manual_seed(settings.seed)
        self.supernet = channels_last(Supernet(space))
        self.rng = np.random.default_rng(settings.seed)
        self.gen = torch.Generator().manual_seed(settings.seed)
        self.pi = PiNAS(self.supernet, settings) if settings.mode == "pi" else None
        self.step = 0
        self.seconds = 0.0
        self.loss: float | None = None
        self.opt = self._optimizer()

    def bn_phase(self) -> bool:
        return self.settings.mode == "bn" and self.step >= self.settings.warmup_steps

    def _optimizer(self) -> torch.optim.Optimizer:
        s = self.settings
        if self.bn_phase():
            for p in self.supernet.parameters():
                p.requires_grad_(False)
            params = bn_parameters(self.supernet)
            for p in params:
                p.requires_grad_(True)
            return torch.optim.SGD(params, lr=s.bn_lr, momentum=s.momentum)
        params = list(self.supernet.parameters())
        if self.pi is not None:
            params += list(self.pi.projector.parameters())
        return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum,
                               weight_decay=s.weight_decay)

    def train_step(self, data: Dataset) -> float:
        x, y = random_batch(data, self.settings.batch_size, self.rng)
        self.supernet.train()
        if self.pi is not None:
            loss = self.pi.loss(self.supernet, x, self.rng, self.gen)
        else:
            self.supernet.set_active(self.supernet.space.sample(self.rng))
            loss = F.cross_entropy(self.supernet(x), y)
        self.opt.zero_grad(set_to_none=True)
        # In the BN phase a path of parameter-free ops only (nb201's none, skip and pool
        # edges) has no BN to train: the step passes with nothing to update.
        if loss.requires_grad:
            loss.backward()
            self.opt.step()
        if self.pi is not None:
            self.pi.update_teacher(self.supernet)
        self.step += 1
        if self.settings.mode == "bn" and self.step == self.settings.warmup_steps:
            self.opt = self._optimizer()
        return float(loss.detach())

    def state(self) -> dict[str, Any]:
        out = {
            "model": self.supernet.state_dict(),
            "optimizer": self.opt.state_dict(),
            "rng": {"numpy": self.rng.bit_generator.state, "torch": torch.get_rng_state(),
                    "augment": self.gen.get_state()},
        }
        if self.pi is not None:
            out.update(self.pi.extra_state())
        return out

    def load(self, meta: CheckpointMeta, state: dict[str, Any]) -> None:
        self.supernet.load_state_dict(state["model"])
        if self.pi is not None:
            self.pi.load_extra_state(state)
        self.step, self.seconds, self.loss = meta.step, meta.seconds, meta.loss
        self.opt = self._optimizer()
        self.opt.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]["numpy"]
        torch.set_rng_state(state["rng"]["torch"])
        self.gen.set_state(state["rng"]["augment"])


def load_supernet(path: str | Path) -> tuple[CheckpointMeta, Supernet]:
    """The supernet stored in a checkpoint (eval mode) and the checkpoint's metadata."""
    meta, state = load_checkpoint(path)
    supernet = Supernet(meta.build_space())
    supernet.load_state_dict(state["model"])
    return meta, supernet.eval()


def train_supernet(space: Space, data: Dataset, *, out: str | Path,
                   settings: TrainSettings | None = None, minutes: float | None = None,
                   steps: int | None = None, resume: bool = True,
                   progress: ProgressFn | None = None, cancel: CancelFn | None = None,
                   checkpoint_every_s: float = 60.0) -> CheckpointMeta:
    """Train a supernet of `space` on `data`, checkpointing to `out`.

    Args:
        space: the search space (its classes and resolution must match `data`).
        data: the dataset (labels are ignored in `pi` mode).
        out: checkpoint path; with `resume` an existing one is continued.
        settings: hyper-parameters and mode (default: SPOS defaults).
        minutes: training-time budget, summed over resumed runs.
        steps: step budget (total, over resumed runs).
        resume: continue from `out` if it exists (it must be of the same space, params,
            settings and data); otherwise it is overwritten.
        progress: called after every step.
        cancel: polled after every step; True stops the run (a checkpoint is written).
        checkpoint_every_s: seconds between checkpoints.

    Returns:
        The metadata of the last checkpoint written.

    Raises:
        ValueError: no budget, a bad budget, or a checkpoint that does not match.
    """
    settings = settings or TrainSettings()
    if minutes is None and steps is None:
        raise ValueError("give a budget: minutes or steps")
    if minutes is not None and not minutes > 0:
        raise ValueError(f"minutes must be > 0, got {minutes!r}")
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    check_compatible(data, space.params)
    keep_freed_memory()
    run = _Run(space, settings)
    meta = CheckpointMeta(space=space.name, params=space.params, settings=settings,
                          data=data.source)
    out = Path(out)
    if resume and out.exists():
        old, state = load_checkpoint(out)
        for field in ("space", "params", "settings", "data"):
            if getattr(old, field) != getattr(meta, field):
                raise ValueError(f"checkpoint {out}: {field} differs from this run's "
                                 f"({getattr(old, field)!r} vs {getattr(meta, field)!r}); "
                                 "use another path or resume=False")
        run.load(old, state)

    def done() -> bool:
        return ((steps is not None and run.step >= steps)
                or (minutes is not None and run.seconds >= minutes * 60))

    def save() -> CheckpointMeta:
        saved = meta.model_copy(update={"step": run.step, "seconds": run.seconds,
                                        "loss": run.loss})
        save_checkpoint(out, saved, run.state())
        return saved

    last_save = time.perf_counter()
    while not done():
        t0 = time.perf_counter()
        run.loss = run.train_step(data)
        run.seconds += time.perf_counter() - t0
        if progress is not None:
            fractions = [run.step / steps if steps else 0.0,
                         run.seconds / (minutes * 60) if minutes else 0.0]
            progress(TrainProgress(run.step, run.seconds, run.loss, min(1.0, max(fractions))))
        if cancel is not None and cancel():
            break
        if time.perf_counter() - last_save >= checkpoint_every_s:
            save()
            last_save = time.perf_counter()
    return save()
