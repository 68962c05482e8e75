"""A small image-classification data layer for accuracy estimation.

Three sources, all ending as the same `Dataset` (normalised float32 NCHW tensors, a
deterministic seeded train/val split, per-channel mean/std computed on the train split):

- `None`: the bundled default, scikit-learn's digits (1,797 8x8 grey images of 10
  classes, shipped inside scikit-learn, so nothing is downloaded), upsampled bilinearly
  to the requested resolution and repeated to 3 channels, so the `mbv2` space at
  `resolution=32, classes=10` takes it as is;
- a directory in ImageFolder layout (`root/<class>/<image>`, classes sorted by name),
  read with PIL, converted to RGB and resized to the resolution;
- an `.npz` file with arrays `x` (N,H,W), (N,H,W,C) or (N,C,H,W) with C in {1, 3}, and
  `y` (N,) integer labels 0..K-1.

Example:
    >>> data = load_dataset(None, resolution=32, seed=0)
    >>> data.x_train.shape[1:], data.classes
    (torch.Size([3, 32, 32]), 10)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
BUNDLED = "bundled:digits"


@dataclass(frozen=True)
class Dataset:
    """Normalised train/val tensors and where they came from.

    Attributes:
        x_train, x_val: float32 (N, 3, R, R), normalised with `mean`/`std` of the train split.
        y_train, y_val: int64 (N,) labels in 0..classes-1.
        classes: number of classes.
        resolution: R.
        source: `bundled:digits`, or the path read.
        mean, std: per-channel statistics of the (un-normalised, 0..1) train split.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    classes: int
    resolution: int
    source: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def train_batches(self, batch_size: int, *, seed: int, drop_last: bool = True
                      ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of shuffled train batches (order fixed by `seed`)."""
        _check_batch(batch_size)
        order = torch.from_numpy(np.random.default_rng(seed).permutation(len(self.y_train)))
        stop = len(order) - (len(order) % batch_size if drop_last else 0)
        if stop == 0:
            stop = len(order)
        for i in range(0, stop, batch_size):
            idx = order[i:i + batch_size]
            yield self.x_train[idx], self.y_train[idx]

    def stream(self, batch_size: int, *, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless train batches: epoch after epoch, epoch e shuffled with seed + e."""
        epoch = 0
        while True:
            yield from self.train_batches(batch_size, seed=seed + epoch)
            epoch += 1

    def val_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The val split in order, in batches of at most `batch_size`."""
        _check_batch(batch_size)
        for i in range(0, len(self.y_val), batch_size):
            yield self.x_val[i:i + batch_size], self.y_val[i:i + batch_size]

    def describe(self) -> str:
        return (f"{self.source}: {len(self.y_train)} train / {len(self.y_val)} val images, "
                f"{self.classes} classes, {self.resolution}x{self.resolution}")


def _check_batch(batch_size: int) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def load_dataset(path: str | Path | None = None, *, resolution: int = 32, seed: int = 0,
                 val_fraction: float = 0.2) -> Dataset:
    """Load, resize, split and normalise a dataset.

    Args:
        path: None for the bundled digits, a directory (ImageFolder layout) or an `.npz`.
        resolution: output height and width.
        seed: seed of the train/val split (stratified per class).
        val_fraction: share of each class held out for validation, in (0, 1).

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: a bad resolution or val_fraction, or data of the wrong shape, type or
            labels (the message names the field).
    """
    if not isinstance(resolution, int) or resolution < 4:
        raise ValueError(f"resolution must be an integer >= 4, got {resolution!r}")
    if not isinstance(val_fraction, float | int) or not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if path is None:
        x, y = _digits()
        source = BUNDLED
    else:
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"data: no such file or directory: {p}")
        source = str(p)
        if p.is_dir():
            x, y = _image_folder(p, resolution)
        elif p.suffix == ".npz":
            x, y = _npz(p)
        else:
            raise ValueError(f"data: {p} is neither a directory (ImageFolder) nor an .npz file")
    xt = _resize(torch.from_numpy(x), resolution)
    classes = _check_labels(y)
    train, val = _split(y, seed=seed, val_fraction=float(val_fraction))
    mean = xt[train].mean(dim=(0, 2, 3))
    std = xt[train].std(dim=(0, 2, 3)).clamp_min(1e-6)
    xt = (xt - mean[None, :, None, None]) / std[None, :, None, None]
    yt = torch.from_numpy(y)
    return Dataset(
        x_train=xt[train].contiguous(), y_train=yt[train].contiguous(),
        x_val=xt[val].contiguous(), y_val=yt[val].contiguous(), classes=classes,
        resolution=resolution, source=source,
        mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std),
    )


def check_compatible(data: Dataset, space_params: dict[str, object]) -> None:
    """Raise `ValueError` if a space's `classes`/`resolution` do not match the data."""
    for field, have in (("classes", data.classes), ("resolution", data.resolution)):
        want = space_params.get(field)
        if want is not None and want != have:
            raise ValueError(f"space parameter {field}={want} does not match the data "
                             f"({data.source} has {field}={have}); pass -p {field}={have}")


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0  # (N, 8, 8) in 0..1
    return np.repeat(images[:, None], 3, axis=1), digits.target.astype(np.int64)


def _image_folder(root: Path, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    class_dirs = sorted(d for d in root.iterdir() if d.is_dir())
    if len(class_dirs) < 2:
        raise ValueError(f"data: {root} needs at least 2 class subdirectories "
                         f"(ImageFolder layout root/<class>/<image>), found {len(class_dirs)}")
    xs: list[np.ndarray] = []
    ys: list[int] = []
    for label, d in enumerate(class_dirs):
        files = sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"data: class directory {d} holds no images "
                             f"({', '.join(IMAGE_SUFFIXES)})")
        for f in files:
            try:
                with Image.open(f) as img:
                    rgb = img.convert("RGB").resize((resolution, resolution),
                                                    Image.Resampling.BILINEAR)
            except (UnidentifiedImageError, OSError) as err:
                raise ValueError(f"data: cannot read image {f}: {err}") from None
            xs.append(np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 255.0)
            ys.append(label)
    return np.stack(xs), np.asarray(ys, dtype=np.int64)


def _npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, EOFError, ValueError, AttributeError) as err:  # not an npz archive
        raise ValueError(f"data: cannot read {path} as .npz: {err}") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise ValueError(f"data: {path} has no array {missing[0]!r} "
                         f"(expected 'x' and 'y', found {', '.join(arrays) or 'none'})")
    x, y = arrays["x"], arrays["y"]
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"data: x must be numeric, got dtype {x.dtype}")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"data: y must be a 1-d integer array, got shape {y.shape} "
                         f"dtype {y.dtype}")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] not in (1, 3) or x.shape[2] != x.shape[3]:
        raise ValueError(f"data: x must be (N,H,W), (N,H,W,C) or (N,C,H,W) with C in (1, 3) "
                         f"and square images, got shape {x.shape}")
    if len(x) != len(y):
        raise ValueError(f"data: x has {len(x)} images but y has {len(y)} labels")
    # Integer images, or floats beyond 1, are taken as 0..255.
    scale = 255.0 if np.issubdtype(x.dtype, np.integer) or x.max(initial=0.0) > 1.0 else 1.0
    x = x.astype(np.float32) / scale
    if x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)
    return np.ascontiguousarray(x), y.astype(np.int64)


def to_resolution(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Images (N, C, H, W) resized bilinearly to `resolution` (as they are if they have it).

    Resizing normalised images equals normalising resized ones: bilinear weights sum to
    one and the normalisation is affine per channel, so a `Dataset`'s tensors can be
    taken to a deployment resolution directly.
    """
    if x.shape[-2:] == (resolution, resolution):
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear",
                         align_corners=False)


def _resize(x: torch.Tensor, resolution: int) -> torch.Tensor:
    x = x.float()
    return x if x.shape[-1] == resolution else to_resolution(x, resolution).clamp(0.0, 1.0)


def _check_labels(y: np.ndarray) -> int:
    if len(y) == 0:
        raise ValueError("data: no images")
    if y.min() < 0:
        raise ValueError(f"data: y holds a negative label ({int(y.min())})")
    classes = int(y.max()) + 1
    counts = np.bincount(y, minlength=classes)
    if classes < 2 or (counts < 2).any():
        bad = int(np.argmin(counts))
        raise ValueError(f"data: y must use every class 0..{classes - 1} at least twice "
                         f"(class {bad} has {int(counts[bad])} images)")
    return classes


def _split(y: np.ndarray, *, seed: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: per class, round(val_fraction * n) (at least 1) images to val."""
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for c in range(int(y.max()) + 1):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val = min(len(idx) - 1, max(1, round(val_fraction * len(idx))))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
