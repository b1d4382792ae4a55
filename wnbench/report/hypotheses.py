"""Hypothesis tests: per-cell P(X > Y) and median differences, the task-level bootstrap, Holm within
families, and IQM per norm."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from . import stats
from .cells import CellScores
from .registry import Claim, Hypothesis, Registry, arm_of, is_careless_init
from .results import NO_DATA, SHARED, CellEstimate, HypothesisResult
from .tables import norm_order


# -- hypotheses -------------------------------------------------------------------------------------------------------
def arm_runs(
    values: Mapping[str, np.ndarray], arms: Sequence[str], all_arms: Sequence[str]
) -> dict[str, np.ndarray]:
    """``{arm: runs}`` of the arms in ``arms``, each label counted for its most specific registry arm. A careless-init
    label (norm option ``init_gain``, C6's measurement) counts only for an arm that names ``init_gain`` itself:
    ``weight[init_gain=10]`` runs beside ``weight`` in a comparison suite are not ``weight``'s runs."""
    out: dict[str, list[np.ndarray]] = {}
    for label, runs in values.items():
        arm = arm_of(label, all_arms)
        if arm is not None and is_careless_init(label) and not is_careless_init(arm):
            continue
        if arm in arms and len(runs):
            out.setdefault(arm, []).append(runs)
    return {a: np.concatenate(v) for a, v in out.items()}


def evaluate_hypothesis(
    claim: Claim,
    hyp: Hypothesis,
    cells: Mapping[str, CellScores],
    registry: Registry,
    reps: int,
    stage: str = SHARED,
    seed: int = 0,
) -> HypothesisResult:
    """Per-cell estimates and the aggregate bootstrap replicates of one hypothesis (Holm is applied later)."""
    result = HypothesisResult(claim.id, hyp.name, hyp.family, hyp.x, hyp.y, stage)
    all_arms = registry.arms()
    min_runs = registry.min_runs(claim)
    usable: list[dict[str, np.ndarray]] = []
    tasks: list[str] = []
    for i, (cell, scored) in enumerate(cells.items()):
        xs = arm_runs(scored.oriented, hyp.x, all_arms)
        ys = arm_runs(scored.oriented, hyp.y, all_arms)
        nx, ny = sum(len(v) for v in xs.values()), sum(len(v) for v in ys.values())
        if not nx or not ny:
            continue
        if nx < min_runs or ny < min_runs:
            result.left_out.append(f"{cell} ({nx} vs {ny} runs)")
            continue
        result.metric = scored.metric
        both = {**{f"x:{a}": v for a, v in xs.items()}, **{f"y:{a}": v for a, v in ys.items()}}
        result.cells.append(_cell_estimate(cell, scored, both, all_arms, reps, seed + i))
        usable.append(both)
        tasks.append(scored.task or cell)
    result.enough = len(usable) >= registry.min_cells(claim)
    if usable:
        _aggregate(result, usable, tasks, registry, reps, seed)
    return result


def _cell_estimate(
    cell: str,
    scored: CellScores,
    both: Mapping[str, np.ndarray],
    all_arms: Sequence[str],
    reps: int,
    seed: int,
) -> CellEstimate:
    """One cell's P(X > Y) and median(X) - median(Y) in raw units, each with its interval over runs; ``both`` holds
    the oriented runs of each X arm (``x:arm``) and Y arm (``y:arm``)."""
    xk = [k for k in both if k.startswith("x:")]
    yk = [k for k in both if k.startswith("y:")]
    p_point = stats.cell_probability(both, xk, yk)
    p_reps = stats.probability_distribution([both], xk, yk, reps=reps, seed=seed, resample_cells=False)
    raw_x = np.concatenate([arm_runs(scored.raw, [k[2:]], all_arms)[k[2:]] for k in xk])
    raw_y = np.concatenate([arm_runs(scored.raw, [k[2:]], all_arms)[k[2:]] for k in yk])
    diff = float(np.median(raw_x) - np.median(raw_y))
    d_reps = stats.median_difference_distribution(raw_x, raw_y, reps=reps, seed=seed)
    return CellEstimate(
        cell, scored.metric, scored.higher_is_better,
        stats.percentile_interval(p_point, p_reps), stats.percentile_interval(diff, d_reps),
        float(np.median(raw_x)), float(np.median(raw_y)), sum(len(both[k]) for k in xk),
        sum(len(both[k]) for k in yk), max(len(v) for v in both.values()), scored.task or cell,
    )  # fmt: skip


def _aggregate(
    result: HypothesisResult,
    usable: Sequence[Mapping[str, np.ndarray]],
    tasks: Sequence[str],
    registry: Registry,
    reps: int,
    seed: int,
) -> None:
    """The task-level point estimate, its bootstrap replicates (tasks, cells, runs), p-value and nominal interval;
    where a task holds several cells, also the cell-weighted figure of the rule before the 2026-12-03 amendment."""
    xk_all = sorted({k for c in usable for k in c if k.startswith("x:")})
    yk_all = sorted({k for c in usable for k in c if k.startswith("y:")})
    result.point = stats.task_mean([c.probability.point for c in result.cells], list(tasks))
    result.replicates = stats.probability_distribution(
        list(usable), xk_all, yk_all, reps=reps, seed=seed, groups=list(tasks)
    )
    result.p_value = stats.bootstrap_p_value(result.replicates)
    result.nominal = stats.percentile_interval(result.point, result.replicates, registry.defaults.confidence)
    result.estimate = result.nominal
    if len(set(tasks)) < len(tasks):  # the rule before the 2026-12-03 amendment, printed beside it
        result.cell_point = float(np.mean([c.probability.point for c in result.cells]))
        result.cell_replicates = stats.probability_distribution(
            list(usable), xk_all, yk_all, reps=reps, seed=seed
        )


def apply_holm(
    hypotheses: Sequence[HypothesisResult], registry: Registry, rope_of: Mapping[str, float]
) -> None:
    """Holm step-down within each (family, stage) over the statistical hypotheses with enough data; then the
    verdict of every hypothesis."""
    families: dict[tuple[str, str], list[HypothesisResult]] = defaultdict(list)
    hypotheses = [h for h in hypotheses if not h.decided]  # v3: decided over tasks by wnbench.report.decide
    for h in hypotheses:
        if h.statistical and h.enough and h.replicates is not None:
            families[h.family_key].append(h)
    for members in families.values():
        steps = stats.holm_steps([h.p_value for h in members], registry.alpha)
        for h, step in zip(members, steps, strict=True):
            h.holm = step
            h.estimate = stats.percentile_interval(h.point, h.replicates, step.confidence)
        rejected = stats.holm_decisions(steps, [stats.clears(h.estimate) for h in members])
        for h, rej in zip(members, rejected, strict=True):
            h.rejected = rej
    for h in hypotheses:
        if not h.statistical:
            continue
        if h.replicates is None:
            h.verdict = stats.INSUFFICIENT if h.left_out else NO_DATA
            continue
        rope = rope_of[h.claim]
        h.verdict = stats.verdict(h.estimate, h.rejected, (0.5 - rope, 0.5 + rope), h.enough)


def iqm_by_norm(cells: Mapping[str, CellScores], reps: int) -> dict[str, stats.Estimate]:
    norms = sorted({n for c in cells.values() for n in c.normalized}, key=norm_order)
    out = {}
    for i, norm in enumerate(norms):
        having = [c for c in cells.values() if len(c.normalized.get(norm, ())) >= 2]
        if not having:
            continue
        arrays = [c.normalized[norm] for c in having]
        groups = [c.task or str(j) for j, c in enumerate(having)]
        point = stats.iqm_point(np.concatenate(arrays))
        replicates = stats.iqm_distribution(arrays, reps=reps, seed=i, groups=groups)
        out[norm] = stats.percentile_interval(point, replicates)
    return out
