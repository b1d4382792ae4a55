"""PNG figures for a run folder: sample grids (images) and scatter plots (2-D points). Agg backend only."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

__all__ = ["save_image_grid", "save_scatter"]


def _numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def save_image_grid(images: torch.Tensor | np.ndarray, path: str | Path, title: str | None = None) -> Path:
    """Tile ``images`` (N, C, H, W) in [0, 1] into a near-square grid and save it as a PNG."""
    x = np.clip(_numpy(images), 0.0, 1.0)
    n, c, h, w = x.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.ones((rows * (h + 1) + 1, cols * (w + 1) + 1, c), dtype=np.float32)
    for i in range(n):
        r, col = divmod(i, cols)
        grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + col * (w + 1) : 1 + col * (w + 1) + w] = x[
            i
        ].transpose(1, 2, 0)
    fig, ax = plt.subplots(figsize=(min(8, 0.15 * grid.shape[1] + 1), min(8, 0.15 * grid.shape[0] + 1)))
    ax.imshow(
        grid[..., 0] if c == 1 else grid,
        cmap="gray" if c == 1 else None,
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def save_scatter(
    samples: torch.Tensor | np.ndarray,
    path: str | Path,
    modes: np.ndarray | None = None,
    real: torch.Tensor | np.ndarray | None = None,
    title: str | None = None,
) -> Path:
    """Scatter generated 2-D ``samples`` (with real points and mode centres, when given) into a PNG."""
    fig, ax = plt.subplots(figsize=(5, 5))
    if real is not None:
        r = _numpy(real)
        ax.scatter(r[:, 0], r[:, 1], s=2, c="tab:gray", alpha=0.3, label="real")
    s = _numpy(samples)
    s = s[np.isfinite(s).all(axis=1)]
    ax.scatter(s[:, 0], s[:, 1], s=2, c="tab:blue", alpha=0.5, label="generated")
    if modes is not None:
        ax.scatter(modes[:, 0], modes[:, 1], marker="x", c="tab:red", s=30, label="modes")
        lim = float(np.abs(modes).max()) * 1.5 + 0.5
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
