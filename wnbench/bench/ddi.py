"""Claim C8: for one layer on whitened input, WN with data-dependent init (DDI) behaves like BN at init.

For each (seed, shape), a correlated, offset input distribution is ZCA-whitened with statistics of a 4096-sample
draw. A WN linear layer is initialized by DDI on that batch; a BN layer (linear + BatchNorm1d, train mode) gets the
same weight directions as unit vectors (BN's output depends on their scale only through its epsilon). Measured: the largest and the mean absolute
difference of their outputs on the init batch (BN's epsilon is the only expected difference), and the mean
absolute difference on a fresh whitened batch of 512, where BN re-estimates the statistics WN fixed at init.
Outputs have unit variance per unit, so the differences read in units of one output standard deviation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from wnbench.norms import make_norm

DEFAULT_SHAPES = ((16, 8), (64, 64), (8, 128))
#: The init-batch agreement a "supported" C8 verdict requires (BN's eps=1e-5 alone gives ~1e-5 here).
INIT_TOLERANCE = 1e-3


@dataclass
class DdiRow:
    seed: int
    in_features: int
    out_features: int
    init_max_abs_diff: float
    init_mean_abs_diff: float
    fresh_mean_abs_diff: float


def _whitener(raw: torch.Tensor):
    mean = raw.mean(0)
    centered = raw - mean
    eigval, eigvec = torch.linalg.eigh(centered.T @ centered / raw.shape[0])
    zca = eigvec @ torch.diag(eigval.clamp_min(1e-12).rsqrt()) @ eigvec.T
    return lambda x: (x - mean) @ zca


def compare_ddi_with_bn(seed: int, in_features: int, out_features: int, samples: int = 4096) -> DdiRow:
    """One WN+DDI vs BN comparison (float64, so the figures measure the math, not rounding)."""
    gen = torch.Generator().manual_seed(seed)
    mixing = torch.randn(in_features, in_features, generator=gen, dtype=torch.float64)
    offset = 3.0 * torch.randn(in_features, generator=gen, dtype=torch.float64)

    def sample(count: int) -> torch.Tensor:
        return torch.randn(count, in_features, generator=gen, dtype=torch.float64) @ mixing + offset

    raw = sample(samples)
    whiten = _whitener(raw)
    white = whiten(raw)
    torch.manual_seed(seed)
    norm = make_norm("weight_ddi")
    wn = norm.linear(in_features, out_features).double()
    norm.initialize(wn, white)
    bn = make_norm("batch").linear(in_features, out_features).double()
    with torch.no_grad():
        v = wn.v.reshape(out_features, in_features)
        bn.layer.weight.copy_(
            v / v.norm(dim=1, keepdim=True)
        )  # unit rows: BN's eps then acts as on WN's scale
    bn.train()
    with torch.no_grad():
        diff = (wn(white) - bn(white)).abs()
        fresh = whiten(sample(512))
        fresh_diff = (wn(fresh) - bn(fresh)).abs().mean().item()
    return DdiRow(seed, in_features, out_features, diff.max().item(), diff.mean().item(), fresh_diff)


def measure_ddi(
    seeds: Sequence[int] = range(10), shapes: Sequence[tuple[int, int]] = DEFAULT_SHAPES
) -> list[DdiRow]:
    """Every (seed, shape) comparison."""
    return [compare_ddi_with_bn(seed, i, o) for seed in seeds for i, o in shapes]
