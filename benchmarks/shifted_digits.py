"""A harder 32x32 task made from the bundled digits, for proxy_quality's ground truth (issue 5).

On the plain bundled digits a short schedule takes every arch to 90-99%, the spread
between archs is little more than a seed's, and the ranking labels are mostly noise
(`docs/estimators.md`). This task keeps the same 1,797 digits and 10 classes (nothing to
download) but leaves room between archs: each digit, upsampled to 14-22 px, rotated by up
to 10 degrees and sheared, sits at a random place on a black 32x32 canvas, under Gaussian
noise. Two archs of width 0.25 reached 77% and 83% after 150 steps of `train_net`.
Harder variants left the short schedule at chance: random grey levels for digit and
background (either polarity) with crops of other digits as clutter, 10-21% after 150
and 300 steps. One rendering per digit, so the stratified train/val split never holds two
views of the same digit. Seeded: the same seed writes the same arrays.

    .venv/bin/python benchmarks/shifted_digits.py -o /tmp/hwnas-proxy-quality/shifted.npz

Writes an `.npz` (`x` (N, 32, 32) float32 in 0..1, `y` (N,) int64) that `--data` of
`hwnas` and of `benchmarks/proxy_quality.py` read, and prints its size and class counts.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SIZE = 32
NOISE = 0.08


def _place(glyph: torch.Tensor, scale: float, angle: float, shear: float,
           shift: tuple[float, float]) -> torch.Tensor:
    """`glyph` (8x8 in 0..1) drawn on a SIZE x SIZE canvas: `scale` px tall, rotated by
    `angle` radians, sheared, its centre moved by `shift` (in -1..1 canvas units)."""
    zoom = SIZE / scale
    cos, sin = math.cos(angle), math.sin(angle)
    theta = torch.tensor([[zoom * cos, zoom * (-sin + shear), -shift[0] * zoom],
                          [zoom * sin, zoom * cos, -shift[1] * zoom]], dtype=torch.float32)
    grid = F.affine_grid(theta[None], [1, 1, SIZE, SIZE], align_corners=False)
    return F.grid_sample(glyph[None, None], grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)[0, 0]


def make(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The images (N, 32, 32) float32 in 0..1 and their labels (N,) int64."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    glyphs = torch.from_numpy(digits.images.astype(np.float32) / 16.0)
    rng = np.random.default_rng(seed)
    images = np.empty((len(glyphs), SIZE, SIZE), dtype=np.float32)
    for i, glyph in enumerate(glyphs):
        digit = _place(glyph, rng.uniform(14, 22), rng.uniform(-0.17, 0.17),
                       rng.uniform(-0.2, 0.2), tuple(rng.uniform(-0.3, 0.3, size=2)))
        pixels = digit.numpy() + rng.normal(0, NOISE, size=(SIZE, SIZE))
        images[i] = np.clip(pixels, 0, 1)
    return images, digits.target.astype(np.int64)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    x, y = make(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, x=x, y=y)
    print(f"{args.out}: {len(y)} images {x.shape[1]}x{x.shape[2]}, classes "
          f"{np.bincount(y).tolist()}, mean {x.mean():.3f}, std {x.std():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
