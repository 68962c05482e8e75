"""The training recipe's image augmentation (`search.training.recipe.Recipe` sets it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from .recipe import Recipe


def augment(x: torch.Tensor, recipe: Recipe, gen: torch.Generator,
            zoom: float = 1.0) -> torch.Tensor:
    """Random translation (reflect pad + crop), optional flip, and with `zoom` > 1 a random
    zoom in by 1 to `zoom` at a random place (`zoom_in`); one draw of each per image."""
    n, _, h, w = x.shape
    pad = round(recipe.translate * min(h, w))
    if pad > 0:
        padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        x = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    if recipe.flip:
        flip = torch.rand(n, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if zoom > 1:
        side = 1 / (1 + (zoom - 1) * torch.rand(n, generator=gen))
        shift = (1 - side)[:, None] * (2 * torch.rand(n, 2, generator=gen) - 1)
        x = zoom_in(x, side, shift)
    return x


def zoom_in(x: torch.Tensor, side: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Per image, the square window `side` long (a share of the image's side, (N,)),
    centred `shift` off the image's centre ((N, 2): x, y, in units of half the image's
    side), resized bilinearly to the whole image."""
    theta = torch.zeros(len(x), 2, 3, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = side
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection",
                         align_corners=False)
