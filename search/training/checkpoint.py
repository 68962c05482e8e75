"""The supernet checkpoint file: a `torch.save` of tensors and plain values.

Everything in it is a tensor, a number, a string, a list or a dict, so it loads with
`torch.load(weights_only=True)` (no pickled code runs). Its metadata is a pydantic model
with a `schema_version` (`CheckpointMeta`, documented in docs/formats.md); the rest is the
supernet's `state_dict`, the optimizer's, the mode's extra state (Pi-NAS: teacher,
projector, queue) and the random states that make a resumed run continue the same stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from spaces import Space, get_space

Mode = Literal["spos", "bn", "pi"]
M = TypeVar("M", bound=BaseModel)
MODES: tuple[str, ...] = ("spos", "bn", "pi")


class TrainSettings(BaseModel):
    """Hyper-parameters of supernet training (fixed for the life of a checkpoint)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = "spos"
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(4e-5, ge=0)
    seed: int = 0
    # BN-NAS: SPOS steps on all weights before only the ops' last BNs are trained.
    warmup_steps: int = Field(30, ge=0)
    bn_lr: float = Field(0.1, gt=0)
    # Pi-NAS: EMA decay of the mean teacher, InfoNCE temperature, negatives kept, weight
    # of the cross-path consistency term, projector output size.
    ema: float = Field(0.99, ge=0, lt=1)
    temperature: float = Field(0.2, gt=0)
    queue: int = Field(512, ge=0)
    consistency: float = Field(1.0, ge=0)
    proj_dim: int = Field(64, ge=1)


class CheckpointMeta(BaseModel):
    """What a checkpoint is of and how far its training went."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    space: str
    params: dict[str, Any]
    settings: TrainSettings
    data: str
    step: int = 0
    seconds: float = 0.0
    loss: float | None = None

    def build_space(self) -> Space:
        return get_space(self.space, **self.params)


def save_checkpoint(path: str | Path, meta: BaseModel, state: dict[str, Any]) -> None:
    """Write `meta` and `state` atomically (a temporary file renamed over `path`).

    An interrupted write leaves the previous checkpoint whole.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"meta": meta.model_dump(mode="json"), **state}, tmp)
    tmp.replace(path)


def read_checkpoint(path: str | Path, *, what: str) -> dict[str, Any]:
    """The dict a `save_checkpoint` wrote, read with `weights_only=True`.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: unreadable, or not a `what` checkpoint (no metadata or no model).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no such file: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a file it cannot read
        raise ValueError(f"checkpoint: cannot read {path}: {type(err).__name__}") from None
    if not isinstance(blob, dict) or "meta" not in blob or "model" not in blob:
        raise ValueError(f"checkpoint: {path} is not a hwnas {what} checkpoint")
    return blob


def load_checkpoint(path: str | Path) -> tuple[CheckpointMeta, dict[str, Any]]:
    """Read a supernet checkpoint; returns (meta, the other entries).

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: not a hwnas supernet checkpoint, or a schema this version cannot read.
    """
    blob = read_checkpoint(path, what="supernet")
    return validate_meta(CheckpointMeta, blob, path, what="supernet"), blob


def validate_meta(model: type[M], blob: dict[str, Any], path: str | Path, *, what: str) -> M:
    """`blob`'s metadata as `model` (popped from `blob`); one-line error otherwise."""
    from profilers.schema import describe_validation_error

    try:
        return model.model_validate(blob.pop("meta"))
    except ValidationError as err:
        raise ValueError(f"checkpoint: {path} is not a hwnas {what} checkpoint "
                         f"({describe_validation_error(err)})") from None
