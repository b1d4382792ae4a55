"""Claim C8: for one layer on whitened input, WN with data-dependent init (DDI) behaves like BN at init.

For each (seed, shape), a correlated, offset input distribution is ZCA-whitened with statistics of a 4096-sample
draw. A WN linear layer is initialized by DDI on that batch; a BN layer (linear + BatchNorm1d, train mode) gets the
same weight directions as unit vectors (BN's output depends on their scale only through its epsilon). Measured: the largest and the mean absolute
difference of their outputs on the init batch (BN's epsilon is the only expected difference), and the mean
absolute difference on a fresh whitened batch of 512, where BN re-estimates the statistics WN fixed at init.
Outputs have unit variance per unit, so the differences read in units of one output standard deviation.
"""

from __future__ import annotations

import copy
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


# -- where the equivalence stops (v3): held-out batches, non-whitened inputs, depth, training ------------------------
#: Input conditions: the claim's (ZCA-whitened), per-feature standardized but still correlated, and raw (correlated
#: and offset by several standard deviations).
INPUTS = ("whitened", "standardized", "raw")
REACH_DEPTHS = (1, 2, 4)
REACH_STEPS = (0, 10, 100)
REACH_BATCHES = (32, 512)
#: A held-out difference within this many output standard deviations counts as "behaves like BN" (pre-registered
#: in registry.yaml (v3), C8): BN's own re-estimation noise at batch 512 is about 1/sqrt(512) = 0.04.
HELDOUT_TOLERANCE = 0.1


@dataclass
class ReachRow:
    seed: int
    inputs: str
    depth: int
    train_steps: int
    batch: int
    mean_abs_diff: float  # in units of the WN stack's output standard deviation on that batch
    max_abs_diff: float
    wn_moved: (
        float  # mean |WN output now - WN output at init| on the same batch, same units: how far training went
    )
    bn_moved: float  # the same for the BN stack


def _preprocess(kind: str, raw: torch.Tensor):
    if kind == "whitened":
        return _whitener(raw)
    if kind == "standardized":
        mean, std = raw.mean(0), raw.std(0)
        return lambda x: (x - mean) / std
    return lambda x: x


def _stacks(width: int, in_features: int, depth: int, init_batch: torch.Tensor):
    """A WN+DDI stack and a BN stack (Linear -> BN) with the same weights, ReLU between layers.

    BN's weight is WN's ``v`` itself, not its direction: BN's output ignores the weight's scale (up to epsilon) but
    its effective learning rate on the direction is lr / ||W||^2, as WN's is lr * g / ||v||^2 ... so the two
    only train alike when the norms match (with unit rows BN's direction would move ~||v||^-2 times slower).
    """
    wn_norm, bn_norm = make_norm("weight_ddi"), make_norm("batch")
    wn_layers, bn_layers = [], []
    for i in range(depth):
        fan_in = in_features if i == 0 else width
        wn_layers.append(wn_norm.linear(fan_in, width).double())
        bn_layers.append(bn_norm.linear(fan_in, width).double())
        if i < depth - 1:
            wn_layers.append(torch.nn.ReLU())
            bn_layers.append(torch.nn.ReLU())
    wn, bn = torch.nn.Sequential(*wn_layers), torch.nn.Sequential(*bn_layers)
    wn_norm.initialize(wn, init_batch)
    with torch.no_grad():
        for w_layer, b_layer in zip(wn_layers[::2], bn_layers[::2], strict=True):
            b_layer.layer.weight.copy_(w_layer.v.reshape(width, -1))
    return wn, bn


def _train_both(wn, bn, sample, teacher, steps: int, lr: float = 0.05, batch: int = 64) -> None:
    """The same SGD steps on the same batches for both stacks (regression onto a fixed random teacher)."""
    opts = [torch.optim.SGD(m.parameters(), lr=lr) for m in (wn, bn)]
    for _ in range(steps):
        x = sample(batch)
        target = teacher(x)
        for model, opt in zip((wn, bn), opts, strict=True):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), target).backward()
            opt.step()


def reach_rows(seed: int, inputs: str, depth: int, width: int = 32, in_features: int = 16) -> list[ReachRow]:
    """WN+DDI against BN on held-out batches of each size, after 0, 10 and 100 identical SGD steps (float64)."""
    gen = torch.Generator().manual_seed(seed)
    mixing = torch.randn(in_features, in_features, generator=gen, dtype=torch.float64)
    offset = 3.0 * torch.randn(in_features, generator=gen, dtype=torch.float64)
    prep = _preprocess(
        inputs, torch.randn(4096, in_features, generator=gen, dtype=torch.float64) @ mixing + offset
    )

    def sample(count: int) -> torch.Tensor:
        return prep(torch.randn(count, in_features, generator=gen, dtype=torch.float64) @ mixing + offset)

    teacher_w = torch.randn(in_features, width, generator=gen, dtype=torch.float64) / in_features**0.5
    torch.manual_seed(seed)
    wn, bn = _stacks(width, in_features, depth, sample(4096))
    wn_init, bn_init = copy.deepcopy(wn), copy.deepcopy(bn)
    bn.train()
    rows, done = [], 0
    heldout = {
        batch: sample(batch) for batch in REACH_BATCHES
    }  # the same held-out batches at every step count
    for steps in REACH_STEPS:
        _train_both(wn, bn, sample, lambda x: torch.tanh(x @ teacher_w), steps - done)
        done = steps
        for batch, x in heldout.items():
            with torch.no_grad():
                out = wn(x)
                scale = out.std(0).clamp_min(1e-12)
                diff = (out - bn(x)).abs() / scale
                moved = ((out - wn_init(x)).abs() / scale).mean().item()
                bn_out = bn(x)
                bn_moved = ((bn_out - bn_init.train()(x)).abs() / scale).mean().item()
            rows.append(
                ReachRow(
                    seed, inputs, depth, steps, batch, diff.mean().item(), diff.max().item(), moved, bn_moved
                )
            )
    return rows


def measure_reach(seeds: Sequence[int] = range(5)) -> list[ReachRow]:
    """Every (seed, input condition, depth) trajectory of :func:`reach_rows`."""
    return [row for s in seeds for kind in INPUTS for d in REACH_DEPTHS for row in reach_rows(s, kind, d)]


def reach_summary(rows: Sequence[ReachRow]) -> list[dict[str, object]]:
    """Median over seeds of the mean held-out difference, per (inputs, depth, train_steps, batch), with whether it
    is within :data:`HELDOUT_TOLERANCE`."""
    import statistics

    groups: dict[tuple, list[ReachRow]] = {}
    for r in rows:
        groups.setdefault((r.inputs, r.depth, r.train_steps, r.batch), []).append(r)
    out = []
    for (inputs, depth, steps, batch), group in sorted(groups.items()):
        diff = statistics.median(r.mean_abs_diff for r in group)
        out.append({
            "inputs": inputs, "depth": depth, "train_steps": steps, "batch": batch, "seeds": len(group),
            "median_mean_abs_diff": diff, "median_wn_moved": statistics.median(r.wn_moved for r in group),
            "median_bn_moved": statistics.median(r.bn_moved for r in group),
            "within_tolerance": diff <= HELDOUT_TOLERANCE,
        })  # fmt: skip
    return out
