"""Simulation evidence for the task-level decider (:mod:`wnbench.report.inference`): records-like data, the old
and new methods' family-wise error under task-level nulls and their power, and the Markdown table the report shows.

Data (:func:`generate`): per replicate, ``tasks`` tasks, each with 1-3 cells, each cell with 3-10 runs per arm
(drawn per cell and arm), arms ``Y`` (shared by the family, as the registry's arm families share BN) and one X arm
per hypothesis. A run's score is ``sigma_task * (arm effect + cell deviation + noise)``: ``sigma_task`` is
log-uniform in [0.5, 2] (seed noise differs between tasks), noise is standard normal, and a share of runs
collapses (3 noise SDs lower; RL-like bimodal returns) in every arm alike. Task-level effects of X_h over Y are
differences of per-task arm effects drawn N(0, between_sd^2 / 2): symmetric around zero, correlated 0.5 between
the family's hypotheses; a power scenario adds a shared ``effect`` (in noise SDs) to hypothesis 0. Under a null,
each cell's P(X > Y) is symmetric around 0.5 and its mean difference around 0, so the mean over tasks is exactly
the null: any *supported* or *contradicted* in the family is a family-wise error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import stats
from .inference import (
    CHOSEN,
    HKSJ,
    MIN_TASKS,
    PROBABILITY,
    PROBABILITY_VARIANCE_FLOOR,
    SIGN_FLIP,
    T_INTERVAL,
    Rule,
    decision_p_values,
    holm_rejections,
)

FWER, POWER = "fwer", "power"
#: The registry's default ROPE half-width around P = 0.5 (registry.yaml ``defaults.rope``).
REPORT_ROPE = 0.07
#: Power scenarios: every task shares this standardized effect (P(X > Y) = Phi(1.5 / sqrt 2) = 0.86 in a cell
#: without run collapses).
POWER_EFFECT = 1.5
NULL_BETWEEN_SD, POWER_BETWEEN_SD = 2.0, 0.25
OLD = "old"


@dataclass(frozen=True)
class Scenario:
    """One simulated setting; effects and SDs are in units of each task's seed noise."""

    tasks: int
    effect: float = 0.0  # hypothesis 0's shared effect; 0 = every hypothesis is a task-level null
    between_sd: float = NULL_BETWEEN_SD  # SD of the task-level effects (heterogeneity)
    cell_sd: float = 0.3  # SD of a cell's effect around its task's
    cells: tuple[int, int] = (1, 3)  # cells per task, inclusive range
    seeds: tuple[int, int] = (3, 10)  # runs per arm and cell, inclusive range
    noise_sd: tuple[float, float] = (0.5, 2.0)  # each task's seed-noise SD, log-uniform
    fail_rate: float = 0.1  # share of runs that collapse
    hypotheses: int = 3  # family size (Holm)

    @property
    def measure(self) -> str:
        return POWER if self.effect else FWER


def null_scenario(tasks: int, **kw: Any) -> Scenario:
    """A task-level null: task effects symmetric around zero, between-task SD twice the seed noise."""
    return Scenario(tasks, 0.0, NULL_BETWEEN_SD, **kw)


def power_scenario(tasks: int, **kw: Any) -> Scenario:
    """Every task shares hypothesis 0's effect of ``POWER_EFFECT`` noise SDs; the other hypotheses are nulls."""
    return Scenario(tasks, POWER_EFFECT, POWER_BETWEEN_SD, **kw)


@dataclass
class SimData:
    """Padded records: ``scores`` (reps, tasks, cells, arms, runs), arm 0 = Y, arm 1 + h = hypothesis h's X."""

    scores: np.ndarray
    runs: np.ndarray  # (reps, tasks, cells, arms) runs present
    cells: np.ndarray  # (reps, tasks) cells present

    @property
    def run_mask(self) -> np.ndarray:
        return np.arange(self.scores.shape[-1]) < self.runs[..., None]

    @property
    def cell_mask(self) -> np.ndarray:
        return np.arange(self.scores.shape[2]) < self.cells[..., None]


def generate(scenario: Scenario, reps: int, rng: np.random.Generator) -> SimData:
    """``reps`` replicates of one family's records under ``scenario`` (see the module docstring)."""
    s = scenario
    arms, max_cells, max_runs = s.hypotheses + 1, s.cells[1], s.seeds[1]
    cells = rng.integers(s.cells[0], s.cells[1] + 1, (reps, s.tasks))
    runs = rng.integers(s.seeds[0], s.seeds[1] + 1, (reps, s.tasks, max_cells, arms))
    sigma = np.exp(rng.uniform(*np.log(s.noise_sd), (reps, s.tasks)))
    arm_effect = rng.normal(0.0, s.between_sd / np.sqrt(2), (reps, s.tasks, arms))
    arm_effect[..., 1] += s.effect
    deviation = rng.normal(0.0, s.cell_sd / np.sqrt(2), (reps, s.tasks, max_cells, arms))
    noise = rng.standard_normal((reps, s.tasks, max_cells, arms, max_runs))
    noise -= 3.0 * (rng.random(noise.shape) < s.fail_rate)
    scores = sigma[:, :, None, None, None] * (arm_effect[:, :, None, :, None] + deviation[..., None] + noise)
    return SimData(scores, runs, cells)


def _masked_var(values: np.ndarray, mask: np.ndarray, n: np.ndarray) -> np.ndarray:
    mean = (values * mask).sum(-1) / n
    return (((values - mean[..., None]) * mask) ** 2).sum(-1) / (n - 1)


def task_estimates(data: SimData, scale: str = PROBABILITY) -> tuple[np.ndarray, np.ndarray]:
    """``(estimates, variances)``, each (reps, hypotheses, tasks): what :func:`inference.task_effects` gives for
    every replicate and hypothesis (a test checks the two agree), vectorized."""
    mask, cell_mask = data.run_mask, data.cell_mask
    y, my, ny = data.scores[..., 0, :], mask[..., 0, :], data.runs[..., 0]
    est, var = [], []
    for h in range(data.scores.shape[3] - 1):
        x, mx, nx = data.scores[..., 1 + h, :], mask[..., 1 + h, :], data.runs[..., 1 + h]
        if scale == PROBABILITY:
            diff = x[..., :, None] - y[..., None, :]
            wins = ((diff > 0) + 0.5 * (diff == 0)) * (mx[..., :, None] & my[..., None, :])
            point = wins.sum((-1, -2)) / (nx * ny)
            share_x = wins.sum(-1) / ny[..., None]
            share_y = wins.sum(-2) / nx[..., None]
            v = _masked_var(share_x, mx, nx) / nx + _masked_var(share_y, my, ny) / ny
            v = np.maximum(v, PROBABILITY_VARIANCE_FLOOR / (nx * ny))
        else:
            point = (x * mx).sum(-1) / nx - (y * my).sum(-1) / ny
            v = _masked_var(x, mx, nx) / nx + _masked_var(y, my, ny) / ny
        k = data.cells
        est.append(np.where(cell_mask, point, 0.0).sum(-1) / k)
        var.append(np.where(cell_mask, v, 0.0).sum(-1) / k**2)
    return np.stack(est, axis=1), np.stack(var, axis=1)


def cells_of(data: SimData, rep: int, hypothesis: int) -> tuple[list[stats.Cell], list[str]]:
    """One replicate's cells for one hypothesis in the report's form (``{"x": runs, "y": runs}``) and each
    cell's task."""
    cells: list[stats.Cell] = []
    groups: list[str] = []
    for t in range(data.scores.shape[1]):
        for c in range(data.cells[rep, t]):
            runs = data.runs[rep, t, c]
            x = data.scores[rep, t, c, 1 + hypothesis, : runs[1 + hypothesis]]
            cells.append({"x": x, "y": data.scores[rep, t, c, 0, : runs[0]]})
            groups.append(f"task{t}")
    return cells, groups


# -- the methods' verdict rates --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """A decider as the table shows it: method, ROPE half-width, and the fewest tasks it decides at."""

    name: str
    method: str
    rope: float = 0.0
    min_tasks: int = 0


#: The report's new rule, and the bare candidates (ROPE 0: the strictest test of the null; no task minimum).
NEW_COLUMNS = (
    Column("new", CHOSEN, REPORT_ROPE, MIN_TASKS),
    Column("t", T_INTERVAL),
    Column("hksj", HKSJ),
    Column("sign_flip", SIGN_FLIP),
)
COLUMN_TITLES = {
    OLD: "old: bootstrap",
    "new": f"new: {CHOSEN.replace('_', '-')}, ROPE {REPORT_ROPE:g}, >= {MIN_TASKS} tasks",
    "t": "t (ROPE 0)",
    "hksj": "HKSJ (ROPE 0)",
    "sign_flip": "sign-flip (ROPE 0)",
}


@dataclass(frozen=True)
class Rate:
    """A Monte-Carlo rate with its standard error."""

    rate: float
    mcse: float
    reps: int

    @classmethod
    def of(cls, hits: np.ndarray) -> Rate:
        n = len(hits)
        p = float(np.mean(hits))
        return cls(p, float(np.sqrt(p * (1 - p) / n)), n)

    def bound(self, nominal: float) -> float:
        """``nominal`` plus two Monte-Carlo standard errors at the nominal rate: the most a method at its
        nominal rate shows in ``reps`` replicates, 97.5% of the time."""
        return nominal + 2 * float(np.sqrt(nominal * (1 - nominal) / self.reps))


def _hits(supported: np.ndarray, contradicted: np.ndarray, measure: str) -> np.ndarray:
    """Per replicate: any decided hypothesis (family-wise error) or hypothesis 0 supported (power)."""
    return (supported | contradicted).any(axis=1) if measure == FWER else supported[:, 0]


def new_hits(
    est: np.ndarray, var: np.ndarray, column: Column, scale: str, measure: str, alpha: float = stats.ALPHA
) -> np.ndarray:
    """One column's hits per replicate from task estimates (reps, hypotheses, tasks)."""
    rule = Rule.superiority(scale, column.rope)
    p, point = decision_p_values(column.method, est, var, rule)
    if est.shape[-1] < column.min_tasks:
        p = np.full_like(p, np.nan)  # insufficient: decided nothing
    rejected = holm_rejections(p, alpha)
    return _hits(rejected & (point > rule.support_edge), rejected & (point < rule.contradict_edge), measure)


def new_rates(
    scenario: Scenario,
    reps: int,
    seed: int = 0,
    columns: Sequence[Column] = NEW_COLUMNS,
    scale: str = PROBABILITY,
    chunk: int = 500,
) -> dict[str, Rate]:
    """Each column's rate (family-wise error under a null scenario, power otherwise) over ``reps`` replicates."""
    rng = np.random.default_rng(seed)
    hits: dict[str, list[np.ndarray]] = {c.name: [] for c in columns}
    for start in range(0, reps, chunk):
        est, var = task_estimates(generate(scenario, min(chunk, reps - start), rng), scale)
        for c in columns:
            hits[c.name].append(new_hits(est, var, c, scale, scenario.measure))
    return {name: Rate.of(np.concatenate(h)) for name, h in hits.items()}


def old_verdicts(
    cells_by_hypothesis: Sequence[tuple[Sequence[stats.Cell], Sequence[str]]],
    boot_reps: int,
    rope: float = REPORT_ROPE,
    alpha: float = stats.ALPHA,
    min_cells: int = 2,
    seed: int = 0,
) -> list[str]:
    """The report's rule before v3, call for call (claims' ``evaluate_hypothesis`` then ``apply_holm``): the
    multi-stage bootstrap over tasks, cells and runs, its p-value, Holm, percentile intervals, ``stats.verdict``."""
    points, replicates, enough = [], [], []
    for cells, groups in cells_by_hypothesis:
        points.append(stats.task_mean([stats.cell_probability(c, ["x"], ["y"]) for c in cells], groups))
        replicates.append(
            stats.probability_distribution(cells, ["x"], ["y"], reps=boot_reps, seed=seed, groups=groups)
        )
        enough.append(len(cells) >= min_cells)
    members = [i for i, e in enumerate(enough) if e]
    steps = stats.holm_steps([stats.bootstrap_p_value(replicates[i]) for i in members], alpha)
    estimates = {
        i: stats.percentile_interval(points[i], replicates[i], s.confidence)
        for i, s in zip(members, steps, strict=True)
    }
    rejected = dict(
        zip(members, stats.holm_decisions(steps, [stats.clears(estimates[i]) for i in members]), strict=True)
    )
    return [
        stats.verdict(estimates.get(i), rejected.get(i, False), (0.5 - rope, 0.5 + rope), enough[i])
        for i in range(len(cells_by_hypothesis))
    ]


def old_rate(scenario: Scenario, reps: int, boot_reps: int = 500, seed: int = 0) -> Rate:
    """The old method's rate over ``reps`` replicates (slow: one bootstrap per hypothesis and replicate)."""
    data = generate(scenario, reps, np.random.default_rng(seed))
    decided = (stats.SUPPORTED, stats.CONTRADICTED)
    hits = []
    for r in range(reps):
        family = [cells_of(data, r, h) for h in range(scenario.hypotheses)]
        verdicts = old_verdicts(family, boot_reps, seed=seed + r)
        if scenario.measure == FWER:
            hits.append(any(v in decided for v in verdicts))
        else:
            hits.append(verdicts[0] == stats.SUPPORTED)
    return Rate.of(np.array(hits))


# -- the table ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InferenceRow:
    """One cell of the table: a method's rate in one (task count, measure) setting."""

    tasks: int
    measure: str
    column: str
    rate: float
    mcse: float
    reps: int


@dataclass
class InferenceTable:
    rows: list[InferenceRow] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def inference_table(
    reps: int = 4000,
    old_reps: int = 200,
    boot_reps: int = 500,
    seed: int = 0,
    task_counts: Iterable[int] = (3, 5, 8, 12),
    progress: Callable[[str], None] | None = None,
) -> InferenceTable:
    """Family-wise error under task-level nulls and power, per task count, for the old method (``old_reps``
    replicates, ``boot_reps`` bootstrap resamples) and the new columns (``reps`` replicates); ``old_reps`` 0
    leaves the old column out."""
    table = InferenceTable(
        meta={
            "reps": reps, "old_reps": old_reps, "boot_reps": boot_reps, "seed": seed, "alpha": stats.ALPHA,
            "null": _describe(null_scenario(0)), "power": _describe(power_scenario(0)),
            "columns": {OLD: COLUMN_TITLES[OLD], **{c.name: COLUMN_TITLES[c.name] for c in NEW_COLUMNS}},
        }
    )  # fmt: skip
    for i, tasks in enumerate(task_counts):
        for j, scenario in enumerate((null_scenario(tasks), power_scenario(tasks))):
            run_seed = seed + 1000 * i + 100 * j
            rates = new_rates(scenario, reps, run_seed)
            if old_reps:
                rates = {OLD: old_rate(scenario, old_reps, boot_reps, run_seed + 1), **rates}
            for name, r in rates.items():
                table.rows.append(InferenceRow(tasks, scenario.measure, name, r.rate, r.mcse, r.reps))
            if progress:
                progress(
                    f"{tasks} tasks, {scenario.measure}: "
                    + ", ".join(f"{k} {v.rate:.3f}" for k, v in rates.items())
                )
    return table


def _describe(s: Scenario) -> dict[str, Any]:
    return {
        "effect": s.effect, "between_sd": s.between_sd, "cell_sd": s.cell_sd, "cells": list(s.cells),
        "seeds": list(s.seeds), "noise_sd": list(s.noise_sd), "fail_rate": s.fail_rate,
        "hypotheses": s.hypotheses, "scale": PROBABILITY,
    }  # fmt: skip


def render_inference_table(data: Mapping[str, Any]) -> str:
    """Markdown of ``inference.json`` (``{"meta", "rows"}``) for the report's method section: rows = task count x
    measure, columns = methods, each rate ± its Monte-Carlo standard error."""
    rows = data["rows"]
    titles = data["meta"].get("columns", {})
    columns = list(dict.fromkeys(r["column"] for r in rows))
    settings = list(dict.fromkeys((r["tasks"], r["measure"]) for r in rows))
    cell = {(r["tasks"], r["measure"], r["column"]): r for r in rows}
    label = {FWER: "family-wise error, null", POWER: "power"}
    lines = [
        "| tasks | measure | " + " | ".join(titles.get(c, c) for c in columns) + " |",
        "|---:|---|" + "---:|" * len(columns),
    ]
    for tasks, measure in settings:
        values = []
        for c in columns:
            r = cell.get((tasks, measure, c))
            values.append(f"{r['rate']:.3f} ± {r['mcse']:.3f} ({r['reps']})" if r else "")
        lines.append(f"| {tasks} | {label.get(measure, measure)} | " + " | ".join(values) + " |")
    meta = data["meta"]
    null, power = meta.get("null", {}), meta.get("power", {})
    lines.append("")
    lines.append(
        f"Rates ± Monte-Carlo SE (replicates). Family of {null.get('hypotheses', '?')} hypotheses, Holm at "
        f"{meta.get('alpha', stats.ALPHA):g}, P(X > Y) scale; cells per task {null.get('cells')}, runs per arm "
        f"{null.get('seeds')}, seed-noise SD {null.get('noise_sd')} by task. Null: task effects symmetric around "
        f"0, between-task SD {null.get('between_sd')} noise SDs; family-wise error = any hypothesis *supported* or "
        f"*contradicted*. Power: every task shares an effect of {power.get('effect')} noise SDs (between-task SD "
        f"{power.get('between_sd')}), two null hypotheses beside it; power = that hypothesis *supported*."
    )
    return "\n".join(lines)
