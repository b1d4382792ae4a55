"""Differentiable augmentation for data-efficient GAN training (Zhao et al. 2020, "DiffAugment").

A discriminator trained on a few thousand images memorizes them: its loss falls steadily while the generator's
rises, and the generator's samples stop improving. DiffAugment applies the same random, differentiable
transformations to every image the discriminator sees -- real and generated, in D's step and in G's -- so D cannot
tell the data's exact pixels apart, while G still learns the un-augmented distribution (the transformations are
applied to both sides, and G's gradient flows through them). The policies here are the paper's two for greyscale
images, with its default strengths:

``translation``  shift each image by up to 1/8 of its size in each direction, zero fill;
``cutout``       zero a square of half the image's size at a random place in each image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = ["POLICIES", "diff_augment"]

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def translation(x: torch.Tensor) -> torch.Tensor:
    """Each image shifted by a random whole number of pixels, up to ``TRANSLATION_RATIO`` of its size, zero fill."""
    n, _, h, w = x.shape
    sy, sx = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    dy = torch.randint(-sy, sy + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sx, sx + 1, (n, 1, 1), device=x.device)
    rows = (torch.arange(h, device=x.device)[None, :, None] + dy + 1).clamp(0, h + 1)
    cols = (torch.arange(w, device=x.device)[None, None, :] + dx + 1).clamp(0, w + 1)
    padded = F.pad(x, (1, 1, 1, 1))  # the border row/column of zeros stands for everything shifted in
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor) -> torch.Tensor:
    """Each image with a square of ``CUTOUT_RATIO`` of its size, centred at a random pixel, set to zero."""
    n, _, h, w = x.shape
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    inside = (
        (rows >= cy - ch // 2)
        & (rows < cy - ch // 2 + ch)
        & (cols >= cx - cw // 2)
        & (cols < cx - cw // 2 + cw)
    )
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, policies: Sequence[str]) -> torch.Tensor:
    """``x`` (N, C, H, W) through each named policy in turn (a fresh draw per image); unknown names: ValueError."""
    for name in policies:
        if name not in POLICIES:
            raise ValueError(f"unknown DiffAugment policy {name!r}; known: {', '.join(POLICIES)}")
        x = POLICIES[name](x)
    return x
