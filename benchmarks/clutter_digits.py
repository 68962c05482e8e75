"""A harder 32x32 task made from the bundled digits, for proxy_quality's ground truth (issue 5).

On the plain bundled digits a short schedule takes every arch to 90-99%, the spread
between archs is little more than a seed's, and the ranking labels are mostly noise
(`docs/estimators.md`). This task keeps the same 1,797 digits and 10 classes (nothing to
download) but makes capacity matter: each digit, upsampled to 12-22 px, rotated by up to
25 degrees and sheared, sits at a random place on a 32x32 canvas with random grey
levels for digit and background, beside two crops of other digits as clutter, under
Gaussian noise. One rendering per digit, so the stratified train/val split never holds
two views of the same digit. Seeded: the same seed writes the same arrays.

    .venv/bin/python benchmarks/clutter_digits.py -o /tmp/hwnas-proxy-quality/clutter.npz

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
# The least grey-level difference between digit and background.
CONTRAST = 0.45


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
        canvas = torch.zeros(SIZE, SIZE)
        for _ in range(2):  # clutter: a quarter-to-half crop of another digit
            other = glyphs[rng.integers(len(glyphs))]
            r, c = rng.integers(0, 5, size=2)
            crop = torch.zeros(8, 8)
            crop[r:r + 4, c:c + 4] = other[r:r + 4, c:c + 4]
            canvas = torch.maximum(canvas, 0.7 * _place(
                crop, rng.uniform(10, 18), rng.uniform(-math.pi, math.pi), 0.0,
                tuple(rng.uniform(-0.8, 0.8, size=2))))
        digit = _place(glyph, rng.uniform(12, 22), rng.uniform(-0.44, 0.44),
                       rng.uniform(-0.3, 0.3), tuple(rng.uniform(-0.4, 0.4, size=2)))
        canvas = torch.maximum(canvas, digit)
        low, high = sorted(rng.uniform(0, 1, size=2))
        if high - low < CONTRAST:  # widen about the middle, within 0..1
            low = min(max(0.0, (low + high - CONTRAST) / 2), 1.0 - CONTRAST)
            high = low + CONTRAST
        if rng.random() < 0.5:
            low, high = high, low  # dark digits on light ground too
        pixels = low + (high - low) * canvas.numpy()
        pixels += rng.normal(0, NOISE, size=pixels.shape)
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
