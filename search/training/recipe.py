"""Train one architecture to deploy it: the default recipe for small CPU budgets.

The recipe (`Recipe`) is the usual one for small mobile nets trained from scratch on
small images (the CIFAR recipes of ProxylessNAS and once-for-all, shortened):

- SGD with Nesterov momentum 0.9 (or AdamW), a linear warm-up over the first 3% of the
  budget, then a cosine decay to zero (one such cycle per resolution, see below);
- cross-entropy with label smoothing 0.1 (Szegedy et al., "Rethinking the Inception
  Architecture", 2016);
- light augmentation: a random translation of up to 1/8 of the side (reflect padding and
  a random crop, per image); horizontal flips only with `flip=True`, since the bundled
  digits (and text, and many industrial images) are not mirror-symmetric;
- BN recalibration at the end (`models.recalibrate_bn`, on un-augmented train batches),
  so the evaluated and exported statistics are those of the final weights;
- with a `final_resolution` (the deployment's, when it is above the training one), the
  last `final_fraction` of the budget trains on images resized to it: progressive
  resizing as in FFCV's ResNet recipes and fast.ai's DAWNBench entry, cheap epochs at a
  low resolution first, then the network adapts to the objects' apparent size at the
  resolution it will see (BN recalibration alone does not close a 2x gap: an mbv2 trained
  at 112 px fell from 96% to 51% at 224 px), and the final statistics and accuracy are
  at that resolution. The final phase is a second learning-rate cycle (a warm restart,
  Loshchilov & Hutter, "SGDR", ICLR 2017: warm-up to the peak again, cosine to zero), as
  fast.ai's progressive-resizing lessons run a new one-cycle schedule per size: the first
  cycle ends at a rate near zero, and the tail of one cosine is too slow to adapt the
  weights to the new size. Measured on the 21-slot `train_winner` arch (mbv2 width 0.5,
  digits at 112 px, the last quarter of 5 minutes at 224 px; 1 thread, two runs at a
  time on 2 cores): 98.6-99.2% at 112 px before the final phase in all four runs; after
  it, at 224 px, 83.8% with the cosine's tail, 95.8% with a restart to the peak, 89.7% to
  half the peak, and 93.6% restarting to the peak over the last 40%.
- before such a final phase, each image is also zoomed in by a random factor from 1 to
  the final resolution over the training one (a window of 1/factor of its side, at a
  random place, resized back; `zoom`): at the deployment resolution objects look that
  many times larger, and FixRes (Touvron et al., "Fixing the train-test resolution
  discrepancy", NeurIPS 2019) shows a net does well at a resolution only if it trained on
  objects of the size they appear there. Measured on the same arch (12 epochs at 112 px,
  seed 0, then only BN-recalibrated at 224 px): 59.9% at 224 px without the zoom, 91.9%
  with it; 5-minute runs with and without it, seed by seed: the README's recipe table.

The budget is a number of `epochs` (the cosine runs over the steps: reproducible
bit for bit) or `minutes` of wall-clock time (the cosine follows the elapsed share of the
budget, so the rate reaches zero when the time is up however fast this shared machine
runs that minute; evaluations count against the time). A minutes run ends about at its
budget: the end's BN recalibration and final evaluation are estimated before the first
step (one forward pass of a batch at the final resolution), again from every epoch's
evaluation at that resolution, and that time is kept out of the training, which stops
mid-epoch when the rest is spent. The estimate is rough, because the recalibration's
cost per image moves more than the evaluation's: 5-minute `train_winner` runs at 224 px
took 337-363 s when the end came after the budget, and 305-328 s with the estimate. A
90 s run of one of those archs took 82 s. The last epoch is evaluated once, after the
recalibration. A run too short for one epoch and the end is
refused before anything is written.

`out/checkpoint.pt` is written atomically after every epoch and at the end (weights,
optimizer, history), so an interrupted run keeps its last good checkpoint and `resume`
continues from it: epoch e always sees the data order and augmentation of seed + e.
Initialisation from a supernet checkpoint (`init`) copies the arch's path out of it
(OFA / BN-NAS weight inheritance); the supernet must be of the same space and params.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from models import Net, build, recalibrate_bn
from search.data import Dataset, check_compatible, to_resolution
from spaces import Arch, Space

from .augment import augment
from .checkpoint import read_checkpoint, save_checkpoint, validate_meta
from .loop import channels_last, evaluate, keep_freed_memory, random_batch

CHECKPOINT = "checkpoint.pt"
WARMUP = 0.03
# Steps timed at the start of a fresh minutes run to refuse a budget under one epoch
# (after the first, which pays for lazy initialisation).
PROBE_STEPS = 3
EVAL_BATCH = 64
# The timed forward pass that sizes a minutes run's end is one batch, so it misses what
# varies between batches and minutes on a shared machine: a margin on top.
END_MARGIN = 1.25


class Recipe(BaseModel):
    """Hyper-parameters of one training run (fixed for the life of its checkpoint)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float | None = Field(default=None, gt=0, description="Peak rate; None: 0.1 per "
                             "128 images of a batch (sgd, linear scaling), 0.002 (adamw).")
    weight_decay: float = Field(default=5e-4, ge=0)
    label_smoothing: float = Field(default=0.1, ge=0, lt=1)
    batch_size: int = Field(default=64, ge=1, le=4096)
    translate: float = Field(default=0.125, ge=0, le=0.5)
    flip: bool = False
    zoom: bool = Field(default=True, description="Before a higher final resolution, "
                       "also zoom each image in by a random factor up to final over "
                       "training resolution (FixRes).")
    recalibration_batches: int = Field(default=16, ge=1)
    final_fraction: float = Field(default=0.25, ge=0, le=1)
    seed: int = 0

    @property
    def base_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        return 0.1 * self.batch_size / 128 if self.optimizer == "sgd" else 2e-3


class EpochRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epoch: int
    loss: float
    val_accuracy: float
    seconds: float


class TrainMeta(BaseModel):
    """What a training checkpoint is of and how far it went (docs/formats.md)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    kind: Literal["arch"] = "arch"
    space: str
    params: dict[str, Any]
    arch: str
    recipe: Recipe
    data: str
    minutes: float | None = None
    epochs: int | None = None
    init: str | None = None
    final_resolution: int | None = None
    epoch: int = 0
    step: int = 0
    seconds: float = 0.0
    history: list[EpochRecord] = Field(default_factory=list)
    # Seconds of a minutes budget kept for the end (recalibration + final evaluation).
    end_seconds: float | None = None
    finished: bool = False
    val_accuracy: float | None = None

    def run_fields(self) -> dict[str, Any]:
        """The fields that identify a run: a resumed checkpoint must match them all."""
        return self.model_dump(include={"space", "params", "arch", "recipe", "data",
                                        "minutes", "epochs", "init", "final_resolution"},
                               mode="json")


@dataclass(frozen=True)
class TrainStatus:
    """Where a run stands, for progress bars: `fraction` of its budget."""

    epoch: int
    step: int
    loss: float
    val_accuracy: float | None
    seconds: float
    fraction: float


@dataclass(frozen=True)
class TrainedArch:
    """A finished run: its metadata, the space it was trained in, the trained net (eval)."""

    meta: TrainMeta
    space: Space
    net: Net


class TrainingCancelled(Exception):
    """`cancel()` returned True; the last epoch's checkpoint is kept."""


def train_arch(space: Space, arch: Arch, data: Dataset, *, out: str | Path,
               minutes: float | None = None, epochs: int | None = None,
               recipe: Recipe | None = None, init: str | Path | None = None,
               final_resolution: int | None = None, resume: bool = True,
               progress: Callable[[TrainStatus], None] | None = None,
               cancel: Callable[[], bool] | None = None) -> TrainedArch:
    """Train `arch` of `space` on `data` with `recipe`, checkpointing into `out`.

    Args:
        space: the training space (its classes and resolution must match `data`).
        arch: the architecture.
        data: the dataset.
        out: folder of `checkpoint.pt`.
        minutes: wall-clock budget (over resumed runs too); give this or `epochs`.
        epochs: epoch budget.
        recipe: hyper-parameters (default `Recipe()`).
        init: a supernet checkpoint of the same space to inherit weights from.
        final_resolution: the resolution of the budget's last `recipe.final_fraction`,
            of the final BN statistics and of the final accuracy (None: the data's).
        resume: continue `out/checkpoint.pt` if it exists (it must be the same run).
        progress: called after every step.
        cancel: polled after every step; True raises `TrainingCancelled`.

    Raises:
        ValueError: a bad budget, data the space cannot take, a checkpoint of another
            run or unreadable, an `init` supernet of another space, a budget under one epoch.
        TrainingCancelled: `cancel` returned True.
    """
    recipe = recipe or Recipe()
    _check_budget(minutes, epochs)
    check_compatible(data, space.params)
    space.validate(arch)
    path = Path(out) / CHECKPOINT
    meta = TrainMeta(space=space.name, params=space.params, arch=space.encode(arch),
                     recipe=recipe, data=data.source, minutes=minutes, epochs=epochs,
                     init=str(init) if init is not None else None,
                     final_resolution=final_resolution
                     if final_resolution not in (None, data.resolution) else None)
    net, meta, opt_state = _start(space, arch, meta, path, resume=resume)
    if meta.finished:
        return TrainedArch(meta, space, net.eval())
    steps_per_epoch = max(1, len(data.y_train) // recipe.batch_size)
    keep_freed_memory()
    channels_last(net)
    opt = _optimizer(net, recipe)
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    run = _Run(net, opt, data, meta, steps_per_epoch, path, progress, cancel)
    run.loop()
    meta = run.finish()
    # Exporters and users get the usual layout back.
    return TrainedArch(meta, space, net.to(memory_format=torch.contiguous_format).eval())


def _check_budget(minutes: float | None, epochs: int | None) -> None:
    if (minutes is None) == (epochs is None):
        raise ValueError("minutes/epochs: give exactly one budget")
    if minutes is not None and (not math.isfinite(minutes) or minutes <= 0):
        raise ValueError(f"minutes must be a positive number, got {minutes!r}")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int)
                               or epochs < 1):
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")


def load_trained(path: str | Path) -> tuple[TrainMeta, dict[str, Any]]:
    """A training checkpoint's metadata and the rest (`model`, `optimizer`).

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: not a hwnas training checkpoint (or unreadable).
    """
    blob = read_checkpoint(path, what="training")
    return validate_meta(TrainMeta, blob, path, what="training"), blob


def _start(space: Space, arch: Arch, meta: TrainMeta, path: Path, *,
           resume: bool) -> tuple[Net, TrainMeta, dict[str, Any] | None]:
    """The net to train, the run's metadata and, when resuming, the optimizer's state."""
    if resume and path.exists():
        saved, blob = load_trained(path)
        want, have = meta.run_fields(), saved.run_fields()
        diff = next((k for k in want if want[k] != have[k]), None)
        if diff is not None:
            raise ValueError(f"{path} is a run with another {diff} ({have[diff]!r}, not "
                             f"{want[diff]!r}): start afresh or use another output folder")
        net = build(space, arch)
        net.load_state_dict(blob["model"])
        return net, saved, blob.get("optimizer")
    torch.manual_seed(meta.recipe.seed)
    if meta.init is None:
        return build(space, arch), meta, None
    from .supernet import load_supernet

    sup_meta, supernet = load_supernet(meta.init)
    if sup_meta.space != space.name or sup_meta.params != space.params:
        raise ValueError(f"init: {meta.init} is a supernet of {sup_meta.space} "
                         f"{sup_meta.params}, not of {space.name} {space.params}")
    return supernet.extract(arch).train(), meta, None


def _optimizer(net: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    # No weight decay on BN parameters and biases (the once-for-all recipe).
    decay = [p for p in net.parameters() if p.ndim > 1]
    rest = [p for p in net.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay},
              {"params": rest, "weight_decay": 0.0}]
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.base_lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=recipe.base_lr)


def learning_rate(base: float, fraction: float, final_fraction: float = 0.0) -> float:
    """The rate at `fraction` of the budget: linear warm-up over `WARMUP` of a cycle, then
    cosine to zero; one cycle over the budget, or, with a `final_fraction`, one before it
    and another over the last `final_fraction` (the final phase's warm restart)."""
    start = 1.0 - final_fraction
    if final_fraction > 0 and fraction >= start:
        return _cycle(base, (fraction - start) / final_fraction)
    return _cycle(base, fraction / start)


def _cycle(base: float, t: float) -> float:
    if t < WARMUP:
        return base * max(t, 1e-3) / WARMUP
    return 0.5 * base * (1 + math.cos(math.pi * min(1.0, (t - WARMUP) / (1 - WARMUP))))


class _Run:
    """The loop of one (possibly resumed) run."""

    def __init__(self, net: Net, opt: torch.optim.Optimizer, data: Dataset, meta: TrainMeta,
                 steps_per_epoch: int, path: Path,
                 progress: Callable[[TrainStatus], None] | None,
                 cancel: Callable[[], bool] | None) -> None:
        self.net, self.opt, self.data, self.meta = net, opt, data, meta
        self.steps_per_epoch, self.path = steps_per_epoch, path
        self.progress = progress or (lambda status: None)
        self.cancel = cancel or (lambda: False)
        self.started = time.monotonic()
        self.probe = (self.started, 0)
        self.before = meta.seconds
        # The epoch the budget ended in (its number and losses), recorded by finish().
        self.last: tuple[int, list[float]] | None = None

    def seconds(self) -> float:
        return self.before + time.monotonic() - self.started

    def training_seconds(self) -> float:
        """The share of a minutes budget the training steps may take."""
        return 60 * self.meta.minutes - (self.meta.end_seconds or 0.0)

    def fraction(self) -> float:
        if self.meta.minutes is not None:
            return min(1.0, self.seconds() / max(self.training_seconds(), 1e-9))
        return min(1.0, self.meta.step / (self.meta.epochs * self.steps_per_epoch))

    def loop(self) -> None:
        recipe = self.meta.recipe
        if self.meta.minutes is not None and self.meta.end_seconds is None:
            self.meta.end_seconds = self._time_end()
            if self.training_seconds() <= 0:  # not even one step: the probe never runs
                raise self._too_short(None)
        while self.fraction() < 1.0:
            epoch = self.meta.epoch
            gen = torch.Generator().manual_seed(recipe.seed * 1_000_003 + epoch)
            losses = []
            self.net.train()
            batches = self.data.train_batches(recipe.batch_size, seed=recipe.seed + epoch)
            for x, y in batches:
                zoom = self._zoom()
                if self.final_phase():
                    x = to_resolution(x, self.meta.final_resolution)
                lr = learning_rate(recipe.base_lr, self.fraction(),
                                   recipe.final_fraction if self.meta.final_resolution
                                   else 0.0)
                for group in self.opt.param_groups:
                    group["lr"] = lr
                loss = F.cross_entropy(self.net(augment(x, recipe, gen, zoom)), y,
                                       label_smoothing=recipe.label_smoothing)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                self.meta.step += 1
                losses.append(loss.item())
                if self.meta.epoch == 0:
                    self._probe(len(losses))
                if self.cancel():
                    raise TrainingCancelled(f"training stopped at epoch {epoch + 1}; "
                                            f"{self.path} holds the last finished epoch")
                self.progress(TrainStatus(epoch + 1, self.meta.step, float(np.mean(losses)),
                                          self._last_accuracy(), self.seconds(),
                                          self.fraction()))
                if self.fraction() >= 1.0:
                    break
            if self.fraction() < 1.0:
                self._end_epoch(epoch, losses)
            else:  # evaluated by finish(), after the recalibration
                self.last = (epoch, losses)

    @torch.no_grad()
    def _time_end(self) -> float:
        """Seconds `finish` will take, before the first step: its recalibration and
        evaluation are forward passes at the final resolution, timed here on one val batch
        (the second of two: the first pays for setting up that resolution). Every later
        evaluation at that resolution replaces the estimate (`_end_epoch`)."""
        size = self.meta.final_resolution or self.data.resolution
        x = to_resolution(self.data.x_val[:EVAL_BATCH], size)
        was = self.net.training
        self.net.eval()
        try:
            self.net(x)
            t0 = time.monotonic()
            self.net(x)
            per_image = (time.monotonic() - t0) / len(x)
        finally:
            self.net.train(was)
        return self._end_from(per_image * len(self.data.y_val))

    def _probe(self, steps: int) -> None:
        """After step 1 start the clock; after PROBE_STEPS more (or when the budget is
        spent first) refuse a minutes budget shorter than one epoch of this pace."""
        if self.meta.minutes is None or self.before > 0 or steps >= self.steps_per_epoch:
            return
        now = time.monotonic()
        if self.fraction() >= 1.0 or steps >= 1 + PROBE_STEPS:
            since, first = self.probe
            per_epoch = (now - since) / (steps - first) * self.steps_per_epoch
            if per_epoch > self.training_seconds():
                raise self._too_short(per_epoch)
        if steps == 1:
            self.probe = (now, 1)

    def _too_short(self, per_epoch: float | None) -> ValueError:
        """The error of a budget under one epoch (of `per_epoch` s; None: not timed)
        plus the end."""
        end = self.meta.end_seconds or 0.0
        epoch = "" if per_epoch is None else (
            f"about {per_epoch:.0f} s for {self.steps_per_epoch} steps of "
            f"{self.meta.recipe.batch_size}, then ")
        return ValueError(
            f"minutes: {self.meta.minutes:g} min is less than one epoch and the end here "
            f"({epoch}{end:.1f} s to recalibrate BN and evaluate); give at least "
            f"{math.ceil(((per_epoch or 0.0) + end) / 6) / 10:g} minutes")

    def _zoom(self) -> float:
        """The largest zoom of this step's augmentation: before a higher final resolution,
        the ratio of the two, so that objects also appear as large as they will there."""
        final = self.meta.final_resolution
        if not self.meta.recipe.zoom or final is None or self.final_phase():
            return 1.0
        return max(1.0, final / self.data.resolution)

    def final_phase(self) -> bool:
        return self.meta.final_resolution is not None and \
            self.fraction() >= 1 - self.meta.recipe.final_fraction

    def _last_accuracy(self) -> float | None:
        return self.meta.history[-1].val_accuracy if self.meta.history else None

    def _end_epoch(self, epoch: int, losses: list[float]) -> None:
        at_end_size = self.meta.final_resolution is None or self.final_phase()
        started = time.monotonic()
        accuracy = evaluate(self.net, self.data, batch_size=EVAL_BATCH,
                            resolution=self.meta.final_resolution if self.final_phase()
                            else None)
        if self.meta.minutes is not None and at_end_size:
            # An evaluation at the end's resolution, timed in the run itself, sizes the end
            # better than the first batch did (a 5-minute run at 224 px overran by 14-28 s
            # on that estimate alone).
            self.meta.end_seconds = self._end_from(time.monotonic() - started)
        self._record(epoch, losses, accuracy)
        self._save()

    def _end_from(self, eval_seconds: float) -> float:
        """The end's seconds from one whole val pass's: the recalibration's forward passes
        cost about as much per image."""
        recipe = self.meta.recipe
        images = len(self.data.y_val) + recipe.recalibration_batches * recipe.batch_size
        return END_MARGIN * eval_seconds * images / len(self.data.y_val)

    def _record(self, epoch: int, losses: list[float], accuracy: float) -> None:
        self.meta.epoch = epoch + 1
        self.meta.seconds = self.seconds()
        self.meta.history.append(EpochRecord(epoch=epoch + 1, loss=float(np.mean(losses)),
                                             val_accuracy=accuracy,
                                             seconds=round(self.meta.seconds, 2)))

    def finish(self) -> TrainMeta:
        recipe = self.meta.recipe
        rng = np.random.default_rng(recipe.seed)
        size = self.meta.final_resolution or self.data.resolution
        # A generator: 16 batches of 64 at 224 px held at once would be 600 MB.
        recalibrate_bn(self.net, (
            to_resolution(random_batch(self.data, recipe.batch_size, rng)[0], size)
            for _ in range(recipe.recalibration_batches)))
        self.meta.val_accuracy = evaluate(self.net, self.data, batch_size=EVAL_BATCH,
                                          resolution=self.meta.final_resolution)
        if self.last is not None:
            self._record(*self.last, self.meta.val_accuracy)
        elif self.meta.history:
            # The budget ran out in the last epoch's own evaluation (a slow one also raises
            # the end's estimate), or a resumed run had no time left: that epoch's record
            # takes the final, recalibrated accuracy, as a last epoch's always does.
            self.meta.history[-1] = self.meta.history[-1].model_copy(
                update={"val_accuracy": self.meta.val_accuracy})
        self.meta.finished = True
        self.meta.seconds = self.seconds()
        self._save()
        return self.meta

    def _save(self) -> None:
        save_checkpoint(self.path, self.meta, {"model": self.net.state_dict(),
                                               "optimizer": self.opt.state_dict()})
