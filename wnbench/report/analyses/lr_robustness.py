"""Robustness to the learning rate: the width of each norm's good-LR range relative to its own best rate.

Per (cell, norm, seed) the width in decades of the widest run of adjacent good rates. Registry v3
(``method.decider``): every hypothesis decided over tasks by :func:`wnbench.report.decide.evaluate_claim` on those
widths (per cell P(width X > width Y), per task the mean, the exact sign-flip test with Holm, "insufficient" below
``min_tasks`` or where the test cannot reach its Holm level), a cell counting for a pair only where both arms reach
the cell's good level (``both_good``). Registry v2: the v2 bootstrap (:func:`wnbench.report.hypotheses.
evaluate_hypothesis`)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wnbench.errors import UserError

from ..anchors import Anchor
from ..cells import (
    CellScores,
    describe_records,
    group_cells,
    is_scored,
    records_for,
    score_cell,
    stage_of,
    task_of,
)
from ..decide import UNGRADED, GradedCell, ScoredPool, evaluate_claim, v2_run_ids
from ..hypotheses import evaluate_hypothesis
from ..records import Inputs
from ..registry import Claim, Registry
from ..results import ClaimResult, HypothesisResult, Table, fmt_value
from ..tables import norm_order

LR_KEYS = ("learning_rate", "lr")
WIDTH = "good-LR width (decades)"


def _lr_of(record: Mapping[str, Any]) -> float | None:
    for key in LR_KEYS:
        value = record["config"]["params"].get(key)
        if isinstance(value, int | float):
            return float(value)
    return None


def good_lr_width(lrs: Sequence[float], scores: Sequence[float], threshold: float) -> float:
    """Width, in decades, of the widest run of adjacent grid rates whose score is at least ``threshold`` (NaN, a
    rate the run lacks, is not good; a single good rate counts as one grid step; grids are log-spaced)."""
    order = np.argsort(lrs)
    lrs_sorted = np.log10(np.asarray(lrs, dtype=float)[order])
    values = np.asarray(scores, dtype=float)[order]
    good = np.isfinite(values) & (values >= threshold)
    step = float(np.median(np.diff(lrs_sorted))) if len(lrs_sorted) > 1 else 1.0
    widest = run = 0
    for flag in good:
        run = run + 1 if flag else 0
        widest = max(widest, run)
    return widest * step


def own_best_threshold(best: float, tolerance: float, floor: float = 0.0) -> float:
    """A rate is good for a norm when its normalized score is at least (1 - tolerance) x the norm's own best median
    and at least ``floor`` (normalized scores: 0 = the random policy or the lower anchor, 1 = the reference): a
    norm that fails at every rate has no good rate, rather than a wide range of equally bad ones. A norm whose
    best is below the floor, or not above 0, has none (threshold +inf)."""
    if best <= 0 or best < floor:
        return math.inf
    return max(best * (1.0 - tolerance), floor)


def analyze_lr(
    claim: Claim, registry: Registry, inputs: Inputs, reps: int, result: ClaimResult
) -> list[HypothesisResult]:
    """A learning-rate claim: per (cell, norm, seed) the width of the good-LR range relative to the norm's own best
    rate; P(width X > width Y); peak performance per norm reported separately."""
    tolerance = claim.tolerance or 0.1
    floor = claim.floor or 0.0
    records = [r for r in records_for(inputs, claim) if stage_of(r) == "eval"]
    describe_records(result, claim, records, inputs)
    records = [r for r in records if _lr_of(r) is not None]
    if not records:
        return [HypothesisResult(claim.id, h.name, h.family, h.x, h.y) for h in claim.hypotheses]
    cells = group_cells(records, exclude_params=LR_KEYS)
    single = [c for c, by in cells.items() if len({_lr_of(r) for rs in by.values() for r in rs}) < 2]
    if single:
        result.notes.append(f"Not a sweep (one learning rate), left out of {claim.id}: {', '.join(single)}.")
    widths: dict[str, CellScores] = {}
    rows = _Rows()
    for cell, by_norm in cells.items():
        if cell not in single:
            cell_widths = _cell_widths(cell, by_norm, tolerance, floor, result, rows)
            if cell_widths is not None:
                widths[cell] = cell_widths
    if getattr(claim, "both_good", False):
        _keep_good_arms(widths, result, floor)
    result.cell_records = cells
    result.cell_scores = {c: s.raw for c, s in widths.items()}
    if registry.method is not None:
        out = _decide_over_tasks(claim, registry, reps, result, widths, cells)
    else:
        out = [evaluate_hypothesis(claim, h, widths, registry, reps) for h in claim.hypotheses]
    for h in out:
        h.metric = WIDTH
    result.tables += rows.tables(tolerance, floor)
    return out


def _decide_over_tasks(
    claim: Claim,
    registry: Registry,
    reps: int,
    result: ClaimResult,
    widths: Mapping[str, CellScores],
    cells: Mapping[str, Mapping[str, Sequence[dict[str, Any]]]],
) -> list[HypothesisResult]:
    """Registry v3: the hypotheses decided over tasks on the widths, as the comparison analysis decides its own
    (the sensitivity table under the headline; no peer grade: the both-good rule is a sweep cell's gate)."""
    bad = [f"{claim.id}: hypotheses[{i}].{field_} (an lr_robustness claim measures good-LR widths only)"
           for i, h in enumerate(claim.hypotheses)
           for field_, set_ in (("metric", h.metric), ("x", h.x.designs), ("y", h.y.designs)) if set_]  # fmt: skip
    if bad:
        raise UserError(f"claims registry {registry.source}: {'; '.join(bad)}")
    assert registry.method is not None
    v2_ids = v2_run_ids() if registry.method.sensitivity.without_v2_cells else frozenset()
    graded = {}
    for c, s in widths.items():
        recs = [r for rs in cells[c].values() for r in rs]
        v2 = any(r["run_id"] in v2_ids for r in recs)
        graded[c] = GradedCell(c, s, UNGRADED, v2, tuple(r["config"] for r in recs))
    out, tables, notes = evaluate_claim(claim, registry, ScoredPool(graded, cells), reps, lambda metric: None)
    result.notes += notes
    result.tables += tables
    return out


def good_arms(thresholds: Mapping[str, float]) -> set[str]:
    """The arms of a cell that reach its good level at some rate (a finite own-best threshold)."""
    return {arm for arm, threshold in thresholds.items() if math.isfinite(threshold)}


def _keep_good_arms(widths: dict[str, CellScores], result: ClaimResult, floor: float) -> None:
    """Both-good rule (registry ``both_good``): in each cell only the arms that reach the cell's good level at some
    rate stay, so an arm pair counts only where both arms do (a cell left with one side has no pair for it)."""
    dropped = []
    for cell, scores in widths.items():
        good = good_arms(result.lr_thresholds.get(cell, {}))
        bad = sorted(set(scores.raw) - good)
        if bad:
            dropped.append(f"{cell}: {', '.join(bad)}")
        for attr in ("raw", "oriented", "normalized"):
            setattr(scores, attr, {arm: v for arm, v in getattr(scores, attr).items() if arm in good})
    if dropped:
        result.notes.append(
            f"Both-good rule: a cell counts for an arm pair only when both arms reach the cell's good level (a "
            f"normalized score of at least {floor:g} × the cell's best median) at some rate; arms that never do, "
            f"left out of their cell's pairs: {'; '.join(dropped)}."
        )


@dataclass
class _Rows:
    """The width and peak tables' rows, one per (cell, norm)."""

    width: list[list[str]] = field(default_factory=list)
    peak: list[list[str]] = field(default_factory=list)

    def tables(self, tolerance: float, floor: float) -> list[Table]:
        return [
            Table(
                f"Good-LR range per norm, relative to its own best (normalized score ≥ {1 - tolerance:g} × the "
                f"norm's best median, and ≥ {floor:g} × the cell's best median)",
                ["cell", "norm", "median width (decades)", "good rates (medians)", "diverged runs", "seeds"],
                sorted(self.width, key=lambda r: (r[0], norm_order(r[1]))),
            ),
            Table(
                "Peak performance per norm (reported separately from robustness)",
                ["cell", "norm", "best rate", "median headline metric there (raw)", "normalized"],
                sorted(self.peak, key=lambda r: (r[0], norm_order(r[1]))),
            ),
        ]


def _cell_widths(
    cell: str,
    by_norm: Mapping[str, Sequence[dict[str, Any]]],
    tolerance: float,
    floor: float,
    result: ClaimResult,
    rows: _Rows,
) -> CellScores | None:
    """One cell's good-LR widths per norm (one per seed), its curves and thresholds kept on ``result`` for the
    figure; ``None`` when no run of the cell is scored."""
    groups = {f"{n}\t{_lr_of(r)}": [] for n, rs in by_norm.items() for r in rs}
    for n, rs in by_norm.items():
        for r in rs:
            groups[f"{n}\t{_lr_of(r)}"].append(r)
    scored = score_cell(groups)
    if scored is None:
        return None
    result.anchors[cell] = scored.anchor.source
    result.lr_curves[cell] = defaultdict(dict)
    result.lr_thresholds[cell] = {}
    # the floor is a share of the cell's best median (norms and rates together) above the lower anchor: fixed
    # anchors differ in reach (RL's reference is the zoo's figure; a VAE's upper anchor, 0 nats, is unreachable)
    group_medians = [float(np.median(v)) for v in scored.normalized.values() if len(v)]
    cell_floor = floor * max(0.0, max(group_medians, default=0.0))
    cell_widths: dict[str, np.ndarray] = {}
    for norm, rs in by_norm.items():
        rates = sorted({_lr_of(r) for r in rs})
        per_rate = {lr: scored.normalized.get(f"{norm}\t{lr}", np.array([])) for lr in rates}
        for lr in rates:
            result.lr_curves[cell][norm][lr] = per_rate[lr]
        medians = {lr: float(np.median(v)) for lr, v in per_rate.items() if len(v)}
        if not medians:
            continue
        best_lr = max(medians, key=medians.get)
        threshold = own_best_threshold(medians[best_lr], tolerance, cell_floor)
        result.lr_thresholds[cell][norm] = threshold
        seeds = sorted({r["config"]["seed"] for r in rs if is_scored(r)})
        seed_widths = _seed_widths(rs, seeds, rates, per_rate, groups, norm, threshold)
        cell_widths[norm] = np.array(seed_widths)
        good = [lr for lr in rates if medians.get(lr, -math.inf) >= threshold]
        diverged = sum(1 for r in rs if r["status"] == "diverged")
        rows.width.append([cell, norm, f"{float(np.median(seed_widths)):.2f}", ", ".join(f"{lr:g}" for lr in good)
                           or "none", str(diverged), str(len(seeds))])  # fmt: skip
        raw_best = scored.raw.get(f"{norm}\t{best_lr}", np.array([math.nan]))
        rows.peak.append([cell, norm, f"{best_lr:g}", fmt_value(float(np.median(raw_best))),
                          fmt_value(medians[best_lr], 3)])  # fmt: skip
    return CellScores(WIDTH, True, cell_widths, cell_widths, cell_widths,
                      Anchor(0.0, 1.0, "decades"), task_of(by_norm))  # fmt: skip


def _seed_widths(
    rs: Sequence[Mapping[str, Any]],
    seeds: Sequence[int],
    rates: Sequence[float],
    per_rate: Mapping[float, np.ndarray],
    groups: Mapping[str, Sequence[Mapping[str, Any]]],
    norm: str,
    threshold: float,
) -> list[float]:
    """One width per seed, over every rate that seed ran (all runs count; a missing rate is not good)."""
    by_seed_rate = {(r["config"]["seed"], _lr_of(r)): r for r in rs if is_scored(r)}
    widths = []
    for s in seeds:
        values = []
        for lr in rates:
            rec = by_seed_rate.get((s, lr))
            if rec is None:
                values.append(math.nan)
                continue
            idx = [x["run_id"] for x in groups[f"{norm}\t{lr}"] if is_scored(x)].index(rec["run_id"])
            values.append(float(per_rate[lr][idx]))
        widths.append(good_lr_width(rates, values, threshold))
    return widths
