"""Claim C4: batch statistics are a noise source. How much does one input's output move when only its
batch companions change?

For each norm, a seeded MLP (16 -> 64 -> 64 -> 8) in train mode sees one fixed input ``x0`` together with
K random sets of ``B - 1`` companions drawn from the input distribution (standard normal), for batch sizes
B = 2 ... 256. The parameters and buffers are restored before every forward, so only the companions
differ between the K outputs. ``relative_spread`` is the standard deviation of ``x0``'s output over the
K sets, averaged over output units, divided by the standard deviation of the outputs across different
inputs in a 256-batch: 1.0 means the companion noise is as large as the difference between inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from wnbench.errors import UserError
from wnbench.norms import available_norms, make_norm

from .models import norm_problems

# every registered kind and alias, and the compositions the suites run (CrossQ + WN)
DEFAULT_NORMS = [*available_norms(), "weight+batch", "weight+batch_renorm"]
DEFAULT_BATCH_SIZES = [2, 4, 8, 16, 32, 64, 128, 256]
IN_FEATURES, HIDDEN, OUT_FEATURES = 16, [64, 64], 8


@dataclass
class NoiseRow:
    norm: str
    batch_size: int
    relative_spread: float
    absolute_spread: float


def check_args(norms: Sequence[str], batch_sizes: Sequence[int], companions: int) -> None:
    """Refuse bad arguments, all problems at once, before anything runs."""
    problems = norm_problems(norms, make_norm)  # the noise benchmark has no stock-WN reference row
    problems += [f"--batch-sizes: {b} is below 2 (no companions)" for b in batch_sizes if b < 2]
    if companions < 2:
        problems.append(f"--companions: need at least 2 companion sets to measure a spread, got {companions}")
    if problems:
        raise UserError("bad benchmark arguments", problems)


def measure_noise(
    norms: Sequence[str] = DEFAULT_NORMS,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    companions: int = 64,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[NoiseRow]:
    """One row per (norm, batch size); see the module docstring for the definition of the spread."""
    check_args(norms, batch_sizes, companions)
    rows: list[NoiseRow] = []
    for name in norms:
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        norm = make_norm(name)
        net = norm.mlp(IN_FEATURES, HIDDEN, OUT_FEATURES)
        norm.initialize(net, torch.randn(256, IN_FEATURES, generator=gen))
        net.train()
        state = {k: v.clone() for k, v in net.state_dict().items()}
        x0 = torch.randn(1, IN_FEATURES, generator=gen)
        with torch.no_grad():
            signal = net(torch.randn(256, IN_FEATURES, generator=gen)).std(dim=0).mean().item()
            for batch_size in batch_sizes:
                outputs = []
                for _ in range(companions):
                    net.load_state_dict(state)
                    others = torch.randn(batch_size - 1, IN_FEATURES, generator=gen)
                    outputs.append(net(torch.cat([x0, others]))[0])
                spread = torch.stack(outputs).std(dim=0).mean().item()
                rows.append(NoiseRow(name, batch_size, spread / signal, spread))
        net.load_state_dict(state)
        if progress:
            progress(f"noise: {name} done")
    return rows


def plot_noise(rows: Sequence[NoiseRow], path: Path) -> None:
    """Relative spread vs batch size, log-log; norms with no spread at all are named in a note."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_norm: dict[str, list[NoiseRow]] = {}
    for r in rows:
        by_norm.setdefault(r.norm, []).append(r)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    zero = []
    floor = 1e-7
    for name, series in by_norm.items():
        if max(r.relative_spread for r in series) < floor:
            zero.append(name)
            continue
        ax.plot(
            [r.batch_size for r in series],
            [max(r.relative_spread, floor) for r in series],
            marker="o",
            label=name,
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size (1 fixed input + companions)")
    ax.set_ylabel("spread of the fixed input's output\n(relative to between-input spread)")
    ax.set_title("C4: output noise from batch companions, train mode")
    ax.grid(True, which="both", alpha=0.3)
    if zero:
        ax.text(0.02, 0.02, "exactly 0 at every batch size:\n" + ", ".join(zero), transform=ax.transAxes,
                fontsize=8, va="bottom", bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8})  # fmt: skip
    if by_norm.keys() - set(zero):
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
