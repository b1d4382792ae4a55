"""From stored records to one result per registered claim: generic analysis over the claims registry.

Scoring (written into every report):

- A run's score is its kind's headline metric (``Scoring.primary``: RL ``final_return``; VAE test ELBO; image GAN
  classifier-feature FID; mixture GAN modes covered; toy test MSE), oriented so that higher is better. A
  diverged run (or one whose metric is not finite) scores as the worst value of its cell. Failed and timed-out
  runs carry no result: they are counted and listed, not scored. Every scored run counts: cells and arms keep
  all their runs, whatever their number.
- A *cell* is everything about a run except its norm and seed (kind, task, algo and the parameters that vary
  between the claim's records). An *arm* is a norm label from the registry; a hypothesis compares arm set X
  with arm set Y.
- Per cell: P(X > Y) (mean over arm pairs of the chance a run of one beats a run of the other, ties half) with a
  95% interval over runs; the difference of medians, X minus Y, in the metric's raw units, with its interval.
  Direction count: the cells whose point estimate favours X, favours Y, or ties.
- Aggregate: the mean over tasks of the mean over each task's cells of P(X > Y), with an interval from a
  multi-stage bootstrap (tasks drawn with replacement, then the cells of each drawn task, then each arm's runs
  inside each drawn cell), at the level Holm-Bonferroni gives the hypothesis
  in its family (the pre-registration lists families and equivalence regions).
- Normalized scores (IQM, performance profiles, C5) use fixed anchors: RL (return - random policy) /
  (rl-zoo reference - random policy); VAE ELBO between the independent-pixel model and 0 nats; modes covered
  between 0 and the number of modes. Other metrics are min-max normalized over the cell, marked *min-max*.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wnbench.rl.scoring import DIAGNOSTIC_KEYS, full_batch_config
from wnbench.suite.kinds import Scoring, get_kind

from . import stats
from .anchors import Anchor, minmax_anchor, record_anchor
from .records import Inputs
from .registry import Claim, Hypothesis, Registry, arm_of, canonical, load_registry

LR_KEYS = ("learning_rate", "lr")
NO_DATA = "no data"
SHARED, TUNED = "shared", "tuned"
#: The headline again on the cells whose baseline is at peer level only (a sensitivity check, its own Holm family).
AT_PEER = "at-peer cells"
#: How each stage is named after a hypothesis in tables.
STAGE_SUFFIX = {SHARED: "", TUNED: " (tuned per norm)", AT_PEER: " (cells at peer level only)"}
NONE = "none"


# -- result containers --------------------------------------------------------------------------------------------
@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]


@dataclass
class Figure:
    title: str
    path: str  # relative to the report directory


@dataclass
class CellEstimate:
    """One cell of a hypothesis: P(X > Y) and the raw-unit median difference, each with a 95% interval."""

    cell: str
    metric: str
    higher_is_better: bool
    probability: stats.Estimate
    median_difference: stats.Estimate  # median(X) - median(Y), raw units
    median_x: float
    median_y: float
    runs_x: int
    runs_y: int
    seeds: int = 0  # runs per arm (each arm runs once per seed): the most among the cell's X and Y arms
    task: str = ""  # the environment or dataset the cell belongs to (what the bootstrap resamples first)

    @property
    def direction(self) -> int:
        return int(np.sign(self.probability.point - 0.5))

    @property
    def cell_verdict(self) -> str:
        if self.probability.low > 0.5:
            return "X better"
        if self.probability.high < 0.5:
            return "Y better"
        return "unclear"


@dataclass
class HypothesisResult:
    """A registered hypothesis evaluated on one stage's records (shared hyperparameters, or tuned per norm)."""

    claim: str
    name: str
    family: str
    x: tuple[str, ...]
    y: tuple[str, ...]
    stage: str = SHARED
    metric: str = ""
    cells: list[CellEstimate] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # cells without enough runs on a side
    point: float | None = None
    replicates: np.ndarray | None = field(default=None, repr=False)
    p_value: float | None = None
    nominal: stats.Estimate | None = None  # at the registry's confidence, before Holm
    estimate: stats.Estimate | None = None  # at the Holm level
    holm: stats.HolmStep | None = None
    rejected: bool = False
    enough: bool = False
    verdict: str = NO_DATA
    text: str = ""  # deterministic measurements: what was measured
    statistical: bool = True  # False: a benchmark decided by its stated rule, no bootstrap, no Holm
    # the rule before the 2026-12-03 amendment (cells weighted equally, cells then runs resampled), kept beside
    # the task-level figure where some task holds more than one cell
    cell_point: float | None = None
    cell_replicates: np.ndarray | None = field(default=None, repr=False)

    @property
    def cell_level(self) -> stats.Estimate | None:
        """The cell-weighted estimate at the same (Holm) confidence as :attr:`estimate`."""
        if self.cell_point is None or self.cell_replicates is None or self.estimate is None:
            return None
        return stats.percentile_interval(self.cell_point, self.cell_replicates, self.estimate.confidence)

    @property
    def family_key(self) -> tuple[str, str]:
        return (self.family, self.stage)

    @property
    def counts(self) -> tuple[int, int, int]:
        """(cells favouring X, favouring Y, tied)."""
        d = [c.direction for c in self.cells]
        return d.count(1), d.count(-1), d.count(0)

    @property
    def direction_text(self) -> str:
        if not self.cells:
            return "—"
        k, j, t = self.counts
        return f"X in {k} of {len(self.cells)} cells, Y in {j}" + (f", tie in {t}" if t else "")

    @property
    def runs(self) -> tuple[int, int]:
        return sum(c.runs_x for c in self.cells), sum(c.runs_y for c in self.cells)

    @property
    def basis(self) -> str:
        if not self.cells:
            return "—"
        rx, ry = self.runs
        return f"{len(self.cells)} cell{'s' * (len(self.cells) != 1)}, {rx} vs {ry} runs"

    @property
    def effect_text(self) -> str:
        """The effect in raw units, cell by cell: median(X) - median(Y) of the cell's metric with its 95% interval."""
        if not self.cells:
            return "—"
        return "; ".join(
            f"{c.cell} ({c.metric}) {_fmt(c.median_difference.point)} "
            f"[{_fmt(c.median_difference.low)}, {_fmt(c.median_difference.high)}]"
            for c in self.cells
        )

    @property
    def statistic_text(self) -> str:
        if not self.statistical:
            return self.text or "—"
        if self.estimate is None:
            return "—"
        level = f"{self.estimate.confidence:.1%}".replace(".0%", "%")
        holm = (
            f", Holm {self.holm.rank}/{self.holm.family_size}"
            if self.holm and self.holm.family_size > 1
            else ""
        )
        cells = self.cell_level
        tasks = f"; cells weighted equally (rule before 2026-12-03): {cells}" if cells is not None else ""
        return f"P(X > Y) = {self.estimate} ({level}{holm}{tasks})"

    def as_dict(self) -> dict[str, Any]:
        est, nom = self.estimate, self.nominal
        return {
            "name": self.name,
            "family": self.family,
            "stage": self.stage,
            "x": list(self.x),
            "y": list(self.y),
            "metric": self.metric,
            "verdict": self.verdict,
            "probability": None if est is None else est.point,
            "ci_low": None if est is None else est.low,
            "ci_high": None if est is None else est.high,
            "ci_confidence": None if est is None else est.confidence,
            "nominal_ci": None if nom is None else [nom.low, nom.high],
            "cell_weighted": None if self.cell_level is None else
            [self.cell_level.point, self.cell_level.low, self.cell_level.high],
            "p_value": self.p_value,
            "holm_rank": None if self.holm is None else [self.holm.rank, self.holm.family_size],
            "cells": len(self.cells),
            "direction_counts": list(self.counts),
            "runs": list(self.runs),
            "left_out": self.left_out,
            "text": self.text,
            "per_cell": [
                {
                    "cell": c.cell,
                    "task": c.task,
                    "metric": c.metric,
                    "probability": [c.probability.point, c.probability.low, c.probability.high],
                    "median_difference": [
                        c.median_difference.point, c.median_difference.low, c.median_difference.high,
                    ],
                    "runs": [c.runs_x, c.runs_y],
                    "seeds": c.seeds,
                    "higher_is_better": c.higher_is_better,
                }
                for c in self.cells
            ],
        }  # fmt: skip


@dataclass
class ClaimResult:
    claim: str
    title: str
    measure: str
    verdict: str = NO_DATA
    tuned_verdict: str | None = None  # when the inputs hold a tuning stage for the claim
    headline: HypothesisResult | None = None
    tuned_headline: HypothesisResult | None = None
    # When some cells' baselines are below peer level: the headline tested without them.
    peer_verdict: str | None = None
    peer_headline: HypothesisResult | None = None
    hypotheses: list[HypothesisResult] = field(default_factory=list)
    iqm: dict[str, stats.Estimate] = field(default_factory=dict)
    anchors: dict[str, str] = field(default_factory=dict)  # cell -> anchor source
    status_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    suites: list[str] = field(default_factory=list)
    # For plots: normalized scores {cell: {norm: array}}; records {cell: {norm: [record]}}
    cell_scores: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    cell_records: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict, repr=False)
    lr_curves: dict[str, dict[str, dict[float, np.ndarray]]] = field(default_factory=dict, repr=False)
    lr_thresholds: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)

    @property
    def headline_text(self) -> str:
        return self.headline.statistic_text if self.headline else "—"

    @property
    def basis(self) -> str:
        if self.headline is None or self.headline.verdict == NO_DATA:
            return "—"
        return self.headline.basis if self.headline.statistical else "benchmark rule"

    @property
    def direction_text(self) -> str:
        return self.headline.direction_text if self.headline else "—"

    @property
    def effect_text(self) -> str:
        return self.headline.effect_text if self.headline else "—"

    def as_dict(self) -> dict[str, Any]:
        return {
            "claim": self.claim,
            "title": self.title,
            "measure": self.measure,
            "verdict": self.verdict,
            "tuned_verdict": self.tuned_verdict,
            "peer_verdict": self.peer_verdict,
            "headline": None if self.headline is None else self.headline.as_dict(),
            "tuned_headline": None if self.tuned_headline is None else self.tuned_headline.as_dict(),
            "peer_headline": None if self.peer_headline is None else self.peer_headline.as_dict(),
            "headline_text": self.headline_text,
            "effect_text": self.effect_text,
            "basis": self.basis,
            "hypotheses": [h.as_dict() for h in self.hypotheses],
            "iqm_normalized": {n: [e.point, e.low, e.high] for n, e in self.iqm.items()},
            "anchors": self.anchors,
            "status_counts": self.status_counts,
            "missing": self.missing,
            "problems": self.problems,
            "suites": self.suites,
            "notes": self.notes,
        }


# -- scoring -----------------------------------------------------------------------------------------------------
@functools.cache
def scoring_of(kind: str) -> Scoring | None:
    try:
        return get_kind(kind).scoring_object()
    except Exception:  # noqa: BLE001 - an unknown kind is reported as unscorable, not a crash
        return None


def metric_of(record: Mapping[str, Any]) -> tuple[str, bool] | None:
    """(headline metric, higher is better) of a record, or ``None`` when its kind has no scoring."""
    scoring = scoring_of(record["config"]["kind"])
    if scoring is None:
        return None
    name = scoring.primary(record["config"])
    return name, scoring.directions.get(name, "max") == "max"


def raw_score(record: Mapping[str, Any], metric: str) -> float:
    """The metric's value; NaN for a diverged run or a missing/non-finite value (it then scores worst)."""
    if record["status"] == "diverged":
        return math.nan
    value = record["metrics"].get(metric)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else math.nan


def is_scored(record: Mapping[str, Any]) -> bool:
    return record["status"] in ("finished", "diverged")


def stage_of(record: Mapping[str, Any]) -> str:
    """``tune`` (a tuning-stage run), ``tuned`` (evaluation at a tuned choice) or ``eval`` (shared settings)."""
    return str(record["config"].get("stage") or "eval")


def throughput(record: Mapping[str, Any]) -> tuple[float, bool]:
    """C3's run throughput: RL env steps per CPU second (higher), else the run's CPU seconds (lower)."""
    if "steps_per_cpu_s" in record["metrics"]:
        value = record["metrics"]["steps_per_cpu_s"]
        return (float(value) if isinstance(value, int | float) else math.nan), True
    cpu = (record.get("timings") or {}).get("run_cpu_s")
    return (float(cpu) if cpu else math.nan), False


ScoreFn = Callable[
    [Mapping[str, Any]], tuple[str, float, bool]
]  # record -> (metric, raw value, higher better)


def headline_score(record: Mapping[str, Any]) -> tuple[str, float, bool] | None:
    info = metric_of(record)
    return None if info is None else (info[0], raw_score(record, info[0]), info[1])


def metric_score(metric: str) -> ScoreFn:
    """Score records on ``metric`` (its direction from the kind's scoring) instead of their headline."""

    def score(record: Mapping[str, Any]) -> tuple[str, float, bool] | None:
        scoring = scoring_of(record["config"]["kind"])
        if scoring is None or metric not in scoring.directions:
            return None
        return metric, raw_score(record, metric), scoring.directions[metric] == "max"

    return score


def throughput_score(record: Mapping[str, Any]) -> tuple[str, float, bool]:
    value, higher = throughput(record)
    return ("steps per CPU s" if higher else "run CPU s"), value, higher


# -- cells ---------------------------------------------------------------------------------------------------------
def arm_label_of(record: Mapping[str, Any]) -> str:
    """A record's arm: its kind's arm label (placement arms of the generative kind), else the canonical norm."""
    scoring = scoring_of(record["config"]["kind"])
    if scoring is not None and scoring.arm is not None:
        label = scoring.arm(record["config"])
        return label if "@" in label else canonical(label)
    return canonical(record["config"]["norm"])


#: Pseudo-parameter for a run's training budget: the profile's ``budget.steps``, else the steps the task's config
#: resolved to (RL: the zoo's ``n_timesteps``). Runs of one (task, algo) at two budgets are two cells, never one arm.
BUDGET_KEY = "steps"


def cell_value(config: Mapping[str, Any], key: str) -> Any:
    """The value of a cell-splitting key in a run's config: a parameter, or the budget (``BUDGET_KEY``)."""
    if key == BUDGET_KEY and key not in config["params"]:
        steps = (config.get("budget") or {}).get("steps")
        return steps if steps is not None else (config.get("resolved") or {}).get("n_timesteps")
    return config["params"].get(key)


def _cell_params(records: Sequence[Mapping[str, Any]], exclude: Iterable[str] = ()) -> list[str]:
    """Parameters whose value differs between records of the same (kind, task, algo): they split cells (those that
    are part of the arm, per the kind's scoring, do not). So does the budget: a published folder holds the
    baseline profile's zoo-budget runs beside the paper profile's shorter ones, and pooling them would mix two
    budgets in one arm."""
    values: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    for r in records:
        c = r["config"]
        scoring = scoring_of(c["kind"])
        arm_params = scoring.arm_params if scoring is not None else frozenset()
        for key in [*c["params"], BUDGET_KEY]:
            if key in arm_params:
                continue
            values[(c["kind"], c["task"], c["algo"], key)].add(json.dumps(cell_value(c, key), sort_keys=True))
    skip = set(exclude)
    return sorted({k[3] for k, v in values.items() if len(v) > 1 and k[3] not in skip})


def cell_of(record: Mapping[str, Any], split: Sequence[str]) -> str:
    c = record["config"]
    values = {k: cell_value(c, k) for k in split}
    # a key no record of this (task, algo) sets (e.g. a generative run's step budget beside RL cells split by it)
    extra = ", ".join(f"{k}={json.dumps(v)}" for k, v in values.items() if v is not None)
    return f"{c['task']}/{c['algo']}" + (f" [{extra}]" if extra else "")


def group_cells(
    records: Sequence[dict[str, Any]], exclude_params: Iterable[str] = ()
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{cell: {arm label (canonical norm, or the kind's arm label): [records in seed order]}}``."""
    split = _cell_params(records, exclude_params)
    cells: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    order: dict[str, tuple[Any, ...]] = {}
    for r in sorted(records, key=lambda r: (r["config"]["seed"], r["run_id"])):
        cell = cell_of(r, split)
        cells[cell][arm_label_of(r)].append(r)
        c = r["config"]
        values = [cell_value(c, k) for k in split]  # numbers in numeric order (batch 4 before 16)
        order[cell] = (
            c["task"],
            c["algo"],
            *[(0, v, "") if isinstance(v, int | float) else (1, 0, json.dumps(v)) for v in values],
        )
    return {c: dict(cells[c]) for c in sorted(cells, key=lambda c: order[c])}


@dataclass
class CellScores:
    """One cell's scored runs per norm: raw values (diverged -> the cell's worst), oriented values (higher better),
    normalized values (fixed anchor, else min-max), and the anchor used."""

    metric: str
    higher_is_better: bool
    raw: dict[str, np.ndarray]
    oriented: dict[str, np.ndarray]
    normalized: dict[str, np.ndarray]
    anchor: Anchor
    task: str = (
        ""  # the environment or dataset: the bootstrap resamples tasks, then the cells inside each task
    )


def task_of(by_norm: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    return next((r["config"]["task"] for recs in by_norm.values() for r in recs), "")


def score_cell(
    by_norm: Mapping[str, Sequence[Mapping[str, Any]]], score: ScoreFn | None = None
) -> CellScores | None:
    values: dict[str, list[float]] = {}
    metric, higher, anchor = "", True, None
    for norm, recs in by_norm.items():
        for r in recs:
            if not is_scored(r):
                continue
            got = (score or headline_score)(r)
            if got is None:
                continue
            metric, value, higher = got
            values.setdefault(norm, []).append(value)
            if anchor is None and score is None:
                anchor = record_anchor(r, metric)
    if not values:
        return None
    finite = [v for vs in values.values() for v in vs if math.isfinite(v)]
    worst = (min(finite) if higher else max(finite)) if finite else 0.0
    raw = {n: np.array([v if math.isfinite(v) else worst for v in vs]) for n, vs in values.items()}
    sign = 1.0 if higher else -1.0
    anchor = anchor or minmax_anchor(finite, higher)
    return CellScores(
        metric,
        higher,
        raw,
        {n: sign * v for n, v in raw.items()},
        {n: anchor.normalize(v) for n, v in raw.items()},
        anchor,
        task_of(by_norm),
    )


def scored_cells(
    cells: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]], score: ScoreFn | None = None
) -> dict[str, CellScores]:
    out = {}
    for cell, by_norm in cells.items():
        scored = score_cell(by_norm, score)
        if scored is not None:
            out[cell] = scored
    return out


# -- hypotheses -------------------------------------------------------------------------------------------------------
def arm_runs(
    values: Mapping[str, np.ndarray], arms: Sequence[str], all_arms: Sequence[str]
) -> dict[str, np.ndarray]:
    """``{arm: runs}`` of the arms in ``arms``, each label counted for its most specific registry arm."""
    out: dict[str, list[np.ndarray]] = {}
    for label, runs in values.items():
        arm = arm_of(label, all_arms)
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
        xk, yk = [f"x:{a}" for a in xs], [f"y:{a}" for a in ys]
        p_point = stats.cell_probability(both, xk, yk)
        p_reps = stats.probability_distribution(
            [both], xk, yk, reps=reps, seed=seed + i, resample_cells=False
        )
        raw_x = np.concatenate([arm_runs(scored.raw, [a], all_arms)[a] for a in xs])
        raw_y = np.concatenate([arm_runs(scored.raw, [a], all_arms)[a] for a in ys])
        diff = float(np.median(raw_x) - np.median(raw_y))
        d_reps = stats.median_difference_distribution(raw_x, raw_y, reps=reps, seed=seed + i)
        result.cells.append(
            CellEstimate(
                cell, scored.metric, scored.higher_is_better,
                stats.percentile_interval(p_point, p_reps), stats.percentile_interval(diff, d_reps),
                float(np.median(raw_x)), float(np.median(raw_y)), nx, ny,
                max(len(v) for v in (*xs.values(), *ys.values())), scored.task or cell,
            )
        )  # fmt: skip
        usable.append(both)
        tasks.append(scored.task or cell)
    result.enough = len(usable) >= registry.min_cells(claim)
    if usable:
        xk_all = sorted({k for c in usable for k in c if k.startswith("x:")})
        yk_all = sorted({k for c in usable for k in c if k.startswith("y:")})
        result.point = stats.task_mean([c.probability.point for c in result.cells], tasks)
        result.replicates = stats.probability_distribution(
            usable, xk_all, yk_all, reps=reps, seed=seed, groups=tasks
        )
        result.p_value = stats.bootstrap_p_value(result.replicates)
        result.nominal = stats.percentile_interval(
            result.point, result.replicates, registry.defaults.confidence
        )
        result.estimate = result.nominal
        if len(set(tasks)) < len(tasks):  # the rule before the 2026-12-03 amendment, printed beside it
            result.cell_point = float(np.mean([c.probability.point for c in result.cells]))
            result.cell_replicates = stats.probability_distribution(
                usable, xk_all, yk_all, reps=reps, seed=seed
            )
    return result


def apply_holm(
    hypotheses: Sequence[HypothesisResult], registry: Registry, rope_of: Mapping[str, float]
) -> None:
    """Holm step-down within each (family, stage) over the statistical hypotheses with enough data; then the
    verdict of every hypothesis."""
    families: dict[tuple[str, str], list[HypothesisResult]] = defaultdict(list)
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


# -- tables ------------------------------------------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.2e}"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.{digits}g}"


_ORDER = ["none", "batch", "batch_renorm", "layer", "group", "weight", "weight_ddi", "weight+meanonly",
          "weight_meanonly", "spectral"]  # fmt: skip


def norm_order(norm: str) -> tuple[int, str]:
    """Sort key: the usual norm order (none, batch, ..., spectral), options after their kind, unknowns last."""
    base = norm.split("[", 1)[0]
    return (_ORDER.index(base) if base in _ORDER else len(_ORDER), norm)


def _median_table(cells: Mapping[str, Mapping[str, Sequence[dict[str, Any]]]], title: str) -> Table:
    """Median raw headline metric per cell and norm (diverged runs counted as such), with run counts."""
    norms = sorted({n for by in cells.values() for n in by}, key=norm_order)
    rows = []
    for cell, by_norm in cells.items():
        metric = next(filter(None, (metric_of(r) for recs in by_norm.values() for r in recs)), None)
        row = [cell, metric[0] if metric else "—"]
        for norm in norms:
            recs = [r for r in by_norm.get(norm, []) if is_scored(r)]
            if not recs or metric is None:
                row.append("—")
                continue
            values = np.array([raw_score(r, metric[0]) for r in recs])
            finite = values[np.isfinite(values)]
            diverged = int((~np.isfinite(values)).sum())
            text = _fmt(float(np.median(finite))) if finite.size else "diverged"
            row.append(text + (f" ({diverged} div.)" if diverged and finite.size else "") + f" n={len(recs)}")
        rows.append(row)
    return Table(title, ["cell", "metric", *norms], rows)


#: Mechanism diagnostics a run's curves may carry (wnbench.rl.diagnostics), in the order they are shown.
DIAGNOSTICS = tuple(f"diag/{key}" for key in DIAGNOSTIC_KEYS)
#: The diagnostics of minibatch sampling noise: shown as "full batch" where the update uses the whole rollout.
SAMPLING_NOISE = ("diag/grad_noise", "diag/grad_var")


def unmeasured_diagnostic(record: Mapping[str, Any], key: str) -> bool:
    """A sampling-noise diagnostic of a full-batch update: nothing to measure (older records hold rounding)."""
    return key in SAMPLING_NOISE and full_batch_config(record.get("config") or {})


def diagnostic_value(record: Mapping[str, Any], key: str) -> float:
    """A run's summary of one diagnostic: the mean over its probe points (NaN when it has none)."""
    curve = (record.get("curves") or {}).get(key) or {}
    values = np.asarray(curve.get("value") or [], dtype=float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan


def _diagnostics_table(cells: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]) -> Table | None:
    """Per cell and diagnostic: the median over runs of each run's mean over its probe points, per arm."""
    norms = sorted({n for by in cells.values() for n in by}, key=norm_order)
    rows = []
    for cell, by_norm in cells.items():
        for key in DIAGNOSTICS:
            row = [cell, key.removeprefix("diag/")]
            seen = False
            for norm in norms:
                scored = [r for r in by_norm.get(norm, []) if is_scored(r)]
                if scored and all(unmeasured_diagnostic(r, key) for r in scored):
                    row.append("full batch")  # no minibatch sampling: any value is rounding (older records)
                    seen = True
                    continue
                values = np.array([diagnostic_value(r, key) for r in scored])
                values = values[np.isfinite(values)]
                seen |= bool(values.size)
                row.append(f"{_fmt(float(np.median(values)))} n={values.size}" if values.size else "—")
            if seen:
                rows.append(row)
    if not rows:
        return None
    return Table(
        "Mechanism diagnostics per cell (median over runs of each run's mean over its probe points; "
        "wnbench.rl.diagnostics): ratio_dev = mean |pi_new/pi_old - 1| on the first minibatch of each PPO update "
        "(0 when train and rollout functions agree); grad_noise = tr(Sigma)/|g|^2 over probe minibatches of the "
        "algorithm's size (full batch: the update uses the whole rollout -- A2C, PPO CartPole's 256 = 8 x 32 -- so it "
        "has no minibatch sampling noise); "
        "weight_norm, eff_lr = the critic's hidden weights and their relative change per step; q_bias = mean Q "
        "minus the Monte-Carlo return",
        ["cell", "diagnostic", *norms],
        rows,
    )


def hypotheses_table(hypotheses: Sequence[HypothesisResult], title: str) -> Table:
    rows = []
    for h in hypotheses:
        rows.append(
            [
                h.name + STAGE_SUFFIX.get(h.stage, ""),
                h.family,
                h.statistic_text,
                "—" if h.nominal is None else str(h.nominal),
                h.direction_text,
                h.basis if h.statistical else "—",
                h.verdict,
            ]
        )
    return Table(
        title,
        ["hypothesis", "family", "aggregate (Holm-level CI)", "95% CI before Holm", "direction", "cells, runs",
         "verdict"],
        rows,
    )  # fmt: skip


def per_cell_table(h: HypothesisResult) -> Table:
    unit = "raw units"
    rows = []
    for c in h.cells:
        better = "higher" if c.higher_is_better else "lower"
        rows.append(
            [
                c.cell,
                f"{c.metric} ({better} better)",
                f"{_fmt(c.median_x)} (n={c.runs_x})",
                f"{_fmt(c.median_y)} (n={c.runs_y})",
                f"{_fmt(c.median_difference.point)} [{_fmt(c.median_difference.low)}, "
                f"{_fmt(c.median_difference.high)}]",
                str(c.probability),
                c.cell_verdict,
            ]
        )
    stage = STAGE_SUFFIX.get(h.stage, "")
    return Table(
        f"{h.claim} {h.name}{stage} per cell: X = {{{', '.join(h.x)}}}, Y = {{{', '.join(h.y)}}}; "
        f"{h.direction_text}",
        ["cell", "metric", "median X", "median Y", f"median X − Y [95% CI] ({unit})", "P(X > Y) [95% CI]",
         "cell (95%, uncorrected)"],
        rows,
    )  # fmt: skip


def _iqm_table(iqm: Mapping[str, stats.Estimate], anchors: Mapping[str, str]) -> Table:
    rows = [[n, str(e)] for n, e in sorted(iqm.items(), key=lambda kv: norm_order(kv[0]))]
    minmax = [c for c, a in anchors.items() if a.startswith("min-max")]
    mark = (
        f"; *min-max* in {len(minmax)} of {len(anchors)} cells" if minmax else "; fixed anchors in every cell"
    )
    return Table(
        f"IQM of normalized score [95% CI: tasks, cells, runs resampled]{mark}", ["norm", "IQM"], rows
    )


#: A cell's no-norm arm is at peer level when its median normalized score is at least this (1 = the zoo's figure).
PEER_LEVEL = 0.95


@dataclass
class PeerCheck:
    """A cell's peer-baseline arm against one published figure (see :func:`peer_checks`)."""

    arm: str
    runs: int
    steps: float
    zoo_steps: float
    source: str
    median: float
    low: float
    best: float
    norm_median: float
    norm_best: float
    metric: str = "final_return"
    single_run: bool = True  # the published figure is one run (rl-zoo), not a mean over trials (PacGAN)

    @property
    def at_peer(self) -> bool:
        """The median run reaches the published figure (normalized >= PEER_LEVEL), at whatever budget."""
        return self.norm_median >= PEER_LEVEL

    @property
    def status(self) -> str:
        if self.zoo_steps and self.steps < 0.99 * self.zoo_steps:
            share = f"{self.steps / self.zoo_steps:.0%} of the zoo's steps"
            return (
                f"at peer level at {share}"
                if self.at_peer
                else f"short budget ({share}): sample efficiency, not peer"
            )
        if self.at_peer:
            return "at peer level"
        if self.norm_best >= PEER_LEVEL:
            return "below peer in the median; best seed at peer" + (
                " (the zoo's figure is one run)" if self.single_run else ""
            )
        return "below peer level"


def peer_checks(by_arm: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[PeerCheck]:
    """A cell's peer-baseline arm (the kind's ``peer_arm``: no norm, or stock CrossQ) against each published figure
    of the cell (:func:`wnbench.report.anchors.peer_figures`: rl-baselines3-zoo's benchmark.md for RL, PacGAN's
    Table 1 for the mixture GANs); empty where the cell has no such arm, runs or figure. Normalized: the figure's
    anchor (random policy, or 0) at 0, the published figure at 1."""
    from .anchors import peer_figures

    first = next((r for recs in by_arm.values() for r in recs), None)
    scoring = scoring_of(first["config"]["kind"]) if first else None
    if first is None or scoring is None or scoring.peer_arm is None:
        return []
    arm = scoring.peer_arm(first["config"])
    recs = [r for r in by_arm.get(arm, []) if is_scored(r)]
    if not recs:
        return []
    rl = first["config"]["kind"] == "rl"
    out = []
    for metric, anchor in peer_figures(first, scoring.primary(first["config"])):
        values = np.array([raw_score(r, metric) for r in recs])
        values = np.where(np.isfinite(values), values, -math.inf)  # a diverged run counts as the worst
        median, best = float(np.median(values)), float(values.max())
        norm_median, norm_best = (float(anchor.normalize(np.array([v]))[0]) for v in (median, best))
        out.append(
            PeerCheck(
                arm=arm,
                runs=len(recs),
                steps=max(float(r["metrics"].get("total_steps") or 0) for r in recs) if rl else 0.0,
                zoo_steps=float((first["config"].get("resolved") or {}).get("n_timesteps") or 0)
                if rl
                else 0.0,
                source=anchor.source.split("rl-zoo ", 1)[-1].removeprefix("fixed: 0, "),
                median=median,
                low=float(values.min()),
                best=best,
                norm_median=norm_median,
                norm_best=norm_best,
                metric=metric,
                single_run=rl,
            )
        )
    return out


def peer_table(cells: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]) -> Table | None:
    """Each cell's :func:`peer_checks`, in raw units and normalized.

    The zoo's figure is one run ("not a quantitative benchmark", benchmark.md), so the table shows the median
    *and* the best seed: *at peer level* needs the median; *best seed only* says the zoo's single run is within
    the seeds' spread but the typical run is below it; a budget below the zoo's is a sample-efficiency cell
    unless its median is already at the zoo's figure. PacGAN's figures are means over trials: the median must
    reach them."""
    rows = []
    sources = []
    for cell, by_arm in cells.items():
        for check in peer_checks(by_arm):
            sources.append(check.single_run)
            rows.append(
                [
                    cell,
                    check.arm,
                    check.metric,
                    f"{check.steps:,.0f} ({check.zoo_steps:,.0f})" if check.zoo_steps else "—",
                    check.source,
                    f"{_fmt(check.median)} [{_fmt(check.low)}, {_fmt(check.best)}] n={check.runs}",
                    f"{check.norm_median:.2f} / {check.norm_best:.2f}",
                    check.status,
                ]
            )
    if not rows:
        return None
    where = " and ".join(
        name
        for name, present in (("rl-baselines3-zoo's benchmark.md", any(sources)),
                              ("PacGAN's Table 1", not all(sources)))
        if present
    )  # fmt: skip
    scales = [
        text
        for text, present in (("(x - random policy) / (published - random policy) for RL", any(sources)),
                              ("x / published for PacGAN's figures", not all(sources)))
        if present
    ]  # fmt: skip
    return Table(
        f"Baselines against {where} (the peer check before any comparison): the peer arm's median [min, max] "
        f"over seeds; normalized = {', '.join(scales)}; at peer level = normalized median >= {PEER_LEVEL} for "
        "every figure of the cell",
        ["cell", "peer arm", "metric", "steps (zoo's)", "published (its entry)", "median [min, max]",
         "normalized median / best", "status"],
        rows,
    )  # fmt: skip


def below_peer_cells(cells: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]) -> list[str]:
    """Cells whose baseline does not reach one of its published figures in the median."""
    return [c for c, by_arm in cells.items() if any(not check.at_peer for check in peer_checks(by_arm))]


def _anchor_table(anchors: Mapping[str, str]) -> Table:
    return Table("Normalization anchors per cell", ["cell", "anchor"], [[c, a] for c, a in anchors.items()])


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


# -- record selection ------------------------------------------------------------------------------------------------
def records_for(inputs: Inputs, claim: Claim) -> list[dict[str, Any]]:
    """The claim's records: those of its suites, or tagged with it by their suite file."""
    return [r for r in inputs.records if r["suite"] in claim.suites or claim.id in r.get("claims", [])]


def _status_counts(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in records:
        counts[arm_label_of(r)][r["status"]] += 1
    return {n: dict(c) for n, c in sorted(counts.items())}


def _problems(records: Iterable[dict[str, Any]]) -> list[str]:
    lines = []
    for r in records:
        if r["status"] in ("failed", "timeout"):
            error = (r.get("error") or "").strip().splitlines()
            lines.append(
                f"{r['status']}: {r['config']['task']}/{r['config']['algo']}/{r['config']['norm']}/seed"
                f"{r['config']['seed']} ({r['run_id']}): {error[-1] if error else 'no message'}"
            )
    return lines


def _missing_for(inputs: Inputs, claim: Claim) -> dict[str, int]:
    missing = inputs.missing_by_suite()
    return {
        m.suite: missing.get(m.suite, 0)
        for m in inputs.manifests
        if (claim.id in m.claims or m.suite in claim.suites) and missing.get(m.suite)
    }


def _base(result: ClaimResult, claim: Claim, records: list[dict[str, Any]], inputs: Inputs) -> None:
    result.status_counts = _status_counts(records)
    result.problems = _problems(records)
    result.missing = _missing_for(inputs, claim)
    result.suites = sorted({r["suite"] for r in records})


def _filter_cells(
    claim: Claim, cells: Mapping[str, Any], records_by_cell: Mapping[str, Any]
) -> dict[str, Any]:
    if not claim.cells:
        return dict(cells)
    keep = {}
    for cell, value in cells.items():
        recs = [r for rs in records_by_cell[cell].values() for r in rs]
        if recs and all(str(recs[0]["config"].get(k)) in v for k, v in claim.cells.items()):
            keep[cell] = value
    return keep


# -- tuned stage ------------------------------------------------------------------------------------------------------
def tuned_records(records: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """The evaluation records at each (cell, norm)'s tuned choice, the tuned parameter names, and one line per
    choice (from the tuning-stage records, :func:`wnbench.suite.tuning.choose_from_records`)."""
    from wnbench.suite.tuning import choose_from_records, matches_choice

    tune = [r for r in records if stage_of(r) == "tune"]
    if not tune:
        return [], [], []
    choices = choose_from_records(tune)
    keys = sorted({k for c in choices.values() for k in c.choice})
    out, lines = [], []
    for group, chosen in choices.items():
        lines.append(f"{group.label}: {chosen.describe()}")
        for r in records:
            if stage_of(r) != "tune" and group.matches(r) and matches_choice(r, chosen.choice):
                out.append(r)
    return out, keys, lines


# -- analyses ---------------------------------------------------------------------------------------------------------
def analyze_comparison(
    claim: Claim, registry: Registry, inputs: Inputs, reps: int, result: ClaimResult
) -> list[HypothesisResult]:
    """Norms compared on the claim's metric (C1, C2, C6, C7): every hypothesis, shared and (when the inputs
    hold a tuning stage) tuned per norm."""
    records = records_for(inputs, claim)
    _base(result, claim, records, inputs)
    if not records:
        return []
    shared = [r for r in records if stage_of(r) == "eval"]
    cells = group_cells(shared)
    scored = scored_cells(cells)
    result.cell_records = cells
    result.cell_scores = {c: s.normalized for c, s in scored.items()}
    result.anchors = {c: s.anchor.source for c, s in scored.items()}
    test_cells = _filter_cells(claim, scored, cells)
    if claim.cells and len(test_cells) < len(scored):
        result.notes.append(
            "Hypotheses are tested on the cells with "
            + ", ".join(f"{k} in {{{', '.join(v)}}}" for k, v in claim.cells.items())
            + f" ({len(test_cells)} of {len(scored)}); the others are shown for reference."
        )
    out = []
    for h in claim.hypotheses:
        if h.metric:  # another recorded metric of the same runs (C1: normalized AUC beside final return)
            alt = _filter_cells(claim, scored_cells(cells, metric_score(h.metric)), cells)
            out.append(evaluate_hypothesis(claim, h, alt, registry, reps))
        else:
            out.append(evaluate_hypothesis(claim, h, test_cells, registry, reps))
    result.iqm = iqm_by_norm(test_cells, reps)
    first = next((i for i, h in enumerate(claim.hypotheses) if not h.metric), None)  # the headline, as shared
    used = [c.cell for c in out[first].cells] if first is not None else []  # the cells it was estimated on
    below = [c for c in below_peer_cells(cells) if c in used]
    if below and len(below) < len(used):
        at_peer = {c: s for c, s in test_cells.items() if c not in below}
        out.append(
            evaluate_hypothesis(claim, claim.hypotheses[first], at_peer, registry, reps, stage=AT_PEER)
        )
        result.notes.append(
            f"Baselines below peer level in {len(below)} of {len(used)} cells ({', '.join(below)}; see the "
            f"peer table): the headline is tested again without them, as its own family ({AT_PEER})."
        )
    peers = peer_table(cells)
    if peers is not None:
        result.tables.append(peers)
    result.tables.append(
        _median_table(cells, "Median of the headline metric per cell (raw units), every run")
    )
    diagnostics = _diagnostics_table(cells)
    if diagnostics is not None:
        result.tables.append(diagnostics)
    tuned, keys, lines = tuned_records(records)
    if tuned:
        tuned_cells = _filter_cells(
            claim,
            scored_cells(group_cells(tuned, exclude_params=keys)),
            group_cells(tuned, exclude_params=keys),
        )
        out += [
            evaluate_hypothesis(claim, h, tuned_cells, registry, reps, stage=TUNED) for h in claim.hypotheses
        ]
        result.notes.append(
            f"Tuned per norm: {', '.join(keys)} chosen per (cell, norm) on tuning seeds disjoint from the "
            "evaluation seeds, then evaluated on the evaluation seeds — " + "; ".join(lines) + "."
        )
    return out


def analyze_timing(
    claim: Claim, registry: Registry, inputs: Inputs, reps: int, result: ClaimResult
) -> list[HypothesisResult]:
    """C3: the paired per-step benchmark (headline) and the runs' own throughput (supporting)."""
    out: list[HypothesisResult] = []
    all_arms = registry.arms()
    for hyp in claim.hypotheses:
        if hyp.metric == "throughput":
            records = [
                r for r in records_for(inputs, claim) if r["status"] == "finished" and stage_of(r) == "eval"
            ]
            if not records:
                out.append(HypothesisResult(claim.id, hyp.name, hyp.family, hyp.x, hyp.y))
                continue
            if not result.suites:
                result.suites = sorted({r["suite"] for r in records})
            cells = group_cells(records)
            scored = scored_cells(cells, throughput_score)
            h = evaluate_hypothesis(claim, hyp, scored, registry, reps)
            h.metric = "run throughput"
            out.append(h)
            result.tables.append(_throughput_table(cells))
            continue
        h = HypothesisResult(claim.id, hyp.name, hyp.family, hyp.x, hyp.y, statistical=False)
        overhead = inputs.bench.get("overhead")
        out.append(h)
        if not overhead:
            continue
        rows = overhead["rows"]
        rope = registry.rope(claim)
        decisions = []
        for model in dict.fromkeys(r["model"] for r in rows):
            by_arm: dict[str, dict[str, Any]] = {}
            for r in rows:
                if r["model"] == model:
                    arm = arm_of(str(r["norm"]), all_arms)
                    if arm is not None:
                        by_arm.setdefault(arm, r)
            for a in hyp.x:
                for b in hyp.y:
                    if a in by_arm and b in by_arm:
                        wa, wb = by_arm[a], by_arm[b]
                        cheaper = wa["train_step_ratio_q75"] < wb["train_step_ratio_q25"]
                        dearer = wa["train_step_ratio_q25"] > wb["train_step_ratio_q75"]
                        close = abs(wa["train_step_ratio"] - wb["train_step_ratio"]) <= rope
                        decisions.append((model, a, b, cheaper, dearer, close, wa, wb))
        if not decisions:
            h.verdict = stats.INSUFFICIENT
            h.text = "the benchmark has no WN and BN rows for one model"
            continue
        if all(d[5] for d in decisions):
            h.verdict = stats.EQUIVALENT
        elif all(d[3] for d in decisions):
            h.verdict = stats.SUPPORTED
        elif all(d[4] for d in decisions):
            h.verdict = stats.CONTRADICTED
        else:
            h.verdict = stats.INCONCLUSIVE
        k = sum(d[3] for d in decisions)
        h.text = (
            "train step vs no norm: " + "; ".join(
                f"{m} {a} {wa['train_step_ratio']:.2f}× vs {b} {wb['train_step_ratio']:.2f}×"
                for m, a, b, _, _, _, wa, wb in decisions[:4]
            ) + (" …" if len(decisions) > 4 else "") + f" (WN cheaper, IQRs apart, in {k} of {len(decisions)})"
        )  # fmt: skip
        meta = overhead.get("meta", {})
        result.tables.append(
            Table(
                f"Paired overhead benchmark (ratio to no norm, median [IQR] of {meta.get('repeats', '?')} "
                f"interleaved repeats, {meta.get('device', '?')}, {meta.get('torch_threads', '?')} thread)",
                ["model", "norm", "train step", "act step", "peak memory"],
                [
                    [
                        r["model"], r["norm"],
                        f"{r['train_step_ratio']:.2f} [{r['train_step_ratio_q25']:.2f}, {r['train_step_ratio_q75']:.2f}]",
                        f"{r['act_step_ratio']:.2f} [{r['act_step_ratio_q25']:.2f}, {r['act_step_ratio_q75']:.2f}]",
                        f"{r['peak_memory_ratio']:.2f}",
                    ]
                    for r in rows
                ],
            )
        )  # fmt: skip
        result.notes.append(
            f"Headline rule (paired benchmark, no bootstrap): *supported* when, for every model and (WN, BN) arm "
            f"pair, WN's train-step ratio IQR lies below BN's; *contradicted* when above; *equivalent* when every "
            f"median ratio is within {rope:g} of the other; else *inconclusive*. Run throughput is supporting "
            "evidence (runs share a machine with other work)."
        )
    return out


def _throughput_table(cells: Mapping[str, Mapping[str, Sequence[dict[str, Any]]]]) -> Table:
    norms = sorted({n for by in cells.values() for n in by}, key=norm_order)
    rows = []
    for cell, by_norm in cells.items():
        base = [throughput(r)[0] for r in by_norm.get(NONE, [])]
        if not base:
            continue
        ref = float(np.median(base))
        higher = throughput(by_norm[NONE][0])[1]
        row = [cell, "steps per CPU s" if higher else "CPU s per run (inverted)"]
        for norm in norms:
            if norm not in by_norm:
                row.append("—")
                continue
            med = float(np.median([throughput(r)[0] for r in by_norm[norm]]))
            row.append(_fmt(med / ref if higher else ref / med, 2))
        rows.append(row)
    return Table(
        "Median run throughput relative to no norm (higher is faster)", ["cell", "measure", *norms], rows
    )


def analyze_noise(
    claim: Claim, registry: Registry, inputs: Inputs, reps: int, result: ClaimResult
) -> list[HypothesisResult]:
    """C4: the noise benchmark (the mechanism, a deterministic measurement) and batch-size sweeps in training."""
    out: list[HypothesisResult] = []
    all_arms = registry.arms()
    mech, *rest = claim.hypotheses
    h = HypothesisResult(claim.id, mech.name, mech.family, mech.x, mech.y, statistical=False)
    out.append(h)
    noise = inputs.bench.get("noise")
    if noise:
        rows_by_norm: dict[str, dict[int, float]] = defaultdict(dict)
        for r in noise["rows"]:
            rows_by_norm[r["norm"]][int(r["batch_size"])] = float(r["relative_spread"])
        sizes = sorted({b for by in rows_by_norm.values() for b in by})
        result.tables.append(
            Table(
                f"Relative spread of one input's output across {noise['meta'].get('companions', '?')} companion "
                "sets (train mode; 0 = no batch dependence)",
                ["norm", *[f"B={b}" for b in sizes]],
                [[n, *[_fmt(by.get(b, math.nan)) for b in sizes]] for n, by in rows_by_norm.items()],
            )
        )
        bns = {n: by for n, by in rows_by_norm.items() if arm_of(n, all_arms) in mech.x}
        wns = {n: by for n, by in rows_by_norm.items() if arm_of(n, all_arms) in mech.y}
        if bns and wns:
            noisy = all(all(v > 0 for v in by.values()) and by[min(by)] > by[max(by)] for by in bns.values())
            wn_zero = all(abs(v) < 1e-6 for by in wns.values() for v in by.values())
            h.verdict = stats.SUPPORTED if noisy and wn_zero else stats.CONTRADICTED
            bn = next(iter(bns.values()))
            small, large = min(bn), max(bn)
            h.text = (
                f"{next(iter(bns))} spread {bn[small]:.3f} at B={small} → {bn[large]:.3f} at B={large}; "
                + ", ".join(f"{n} {max(by.values()):.1g}" for n, by in wns.items())
            )
            result.notes.append(
                "Mechanism rule (deterministic measurement, no bootstrap): supported when every BN arm's spread is "
                "positive at every batch size and larger at the smallest than at the largest, and every WN arm's is "
                "zero."
            )
        else:
            h.verdict = stats.INSUFFICIENT
            h.text = "the noise benchmark lacks a BN or a WN arm"
    records = [r for r in records_for(inputs, claim) if stage_of(r) == "eval"]
    if records:
        _base(result, claim, records, inputs)
        cells = group_cells(records)
        scored = scored_cells(cells)
        result.cell_records = cells
        result.cell_scores = {c: s.normalized for c, s in scored.items()}
        result.anchors = {c: s.anchor.source for c, s in scored.items()}
        out += [evaluate_hypothesis(claim, hyp, scored, registry, reps) for hyp in rest]
        result.tables.append(
            _median_table(cells, "Training with small and large batches: median headline metric")
        )
    else:
        out += [HypothesisResult(claim.id, hyp.name, hyp.family, hyp.x, hyp.y) for hyp in rest]
    return out


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
    """C5: per (cell, norm, seed) the width of the good-LR range relative to the norm's own best rate; P(width X >
    width Y); peak performance per norm reported separately."""
    tolerance = claim.tolerance or 0.1
    floor = claim.floor or 0.0
    records = [r for r in records_for(inputs, claim) if stage_of(r) == "eval"]
    _base(result, claim, records, inputs)
    records = [r for r in records if _lr_of(r) is not None]
    if not records:
        return [HypothesisResult(claim.id, h.name, h.family, h.x, h.y) for h in claim.hypotheses]
    cells = group_cells(records, exclude_params=LR_KEYS)
    single = [c for c, by in cells.items() if len({_lr_of(r) for rs in by.values() for r in rs}) < 2]
    if single:
        result.notes.append(f"Not a sweep (one learning rate), left out of C5: {', '.join(single)}.")
    widths: dict[str, CellScores] = {}
    width_rows, peak_rows = [], []
    for cell, by_norm in cells.items():
        if cell in single:
            continue
        groups = {f"{n}\t{_lr_of(r)}": [] for n, rs in by_norm.items() for r in rs}
        for n, rs in by_norm.items():
            for r in rs:
                groups[f"{n}\t{_lr_of(r)}"].append(r)
        scored = score_cell(groups)
        if scored is None:
            continue
        result.anchors[cell] = scored.anchor.source
        result.lr_curves[cell] = defaultdict(dict)
        result.lr_thresholds[cell] = {}
        cell_widths: dict[str, np.ndarray] = {}
        # the floor is a share of the cell's best median (norms and rates together) above the lower anchor: fixed
        # anchors differ in reach (RL's reference is the zoo's figure; a VAE's upper anchor, 0 nats, is unreachable)
        group_medians = [float(np.median(v)) for v in scored.normalized.values() if len(v)]
        cell_floor = floor * max(0.0, max(group_medians, default=0.0))
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
            # one width per seed, over every rate that seed ran (all runs count; a missing rate is not good)
            seeds = sorted({r["config"]["seed"] for r in rs if is_scored(r)})
            by_seed_rate = {(r["config"]["seed"], _lr_of(r)): r for r in rs if is_scored(r)}
            seed_widths = []
            for s in seeds:
                values = []
                for lr in rates:
                    rec = by_seed_rate.get((s, lr))
                    if rec is None:
                        values.append(math.nan)
                        continue
                    idx = [x["run_id"] for x in groups[f"{norm}\t{lr}"] if is_scored(x)].index(rec["run_id"])
                    values.append(float(per_rate[lr][idx]))
                seed_widths.append(good_lr_width(rates, values, threshold))
            cell_widths[norm] = np.array(seed_widths)
            good = [lr for lr in rates if medians.get(lr, -math.inf) >= threshold]
            diverged = sum(1 for r in rs if r["status"] == "diverged")
            width_rows.append([cell, norm, f"{float(np.median(seed_widths)):.2f}", ", ".join(f"{lr:g}" for lr in good)
                               or "none", str(diverged), str(len(seeds))])  # fmt: skip
            raw_best = scored.raw.get(f"{norm}\t{best_lr}", np.array([math.nan]))
            peak_rows.append([cell, norm, f"{best_lr:g}", _fmt(float(np.median(raw_best))),
                              _fmt(medians[best_lr], 3)])  # fmt: skip
        widths[cell] = CellScores("good-LR width (decades)", True, cell_widths, cell_widths, cell_widths,
                                  Anchor(0.0, 1.0, "decades"), task_of(by_norm))  # fmt: skip
    result.cell_records = cells
    result.cell_scores = {c: s.raw for c, s in widths.items()}
    out = [evaluate_hypothesis(claim, h, widths, registry, reps) for h in claim.hypotheses]
    for h in out:
        h.metric = "good-LR width (decades)"
    result.tables.append(
        Table(
            f"Good-LR range per norm, relative to its own best (normalized score ≥ {1 - tolerance:g} × the norm's "
            f"best median, and ≥ {floor:g} × the cell's best median)",
            ["cell", "norm", "median width (decades)", "good rates (medians)", "diverged runs", "seeds"],
            sorted(width_rows, key=lambda r: (r[0], norm_order(r[1]))),
        )
    )
    result.tables.append(
        Table(
            "Peak performance per norm (reported separately from robustness)",
            ["cell", "norm", "best rate", "median headline metric there (raw)", "normalized"],
            sorted(peak_rows, key=lambda r: (r[0], norm_order(r[1]))),
        )
    )
    return out


def analyze_ddi(
    claim: Claim, registry: Registry, inputs: Inputs, reps: int, result: ClaimResult
) -> list[HypothesisResult]:
    hyp = claim.headline
    h = HypothesisResult(claim.id, hyp.name, hyp.family, hyp.x, hyp.y, statistical=False)
    ddi = inputs.bench.get("ddi")
    if not ddi:
        return [h]
    rows = ddi["rows"]
    tolerance = float(ddi["meta"].get("init_tolerance", 1e-3))
    worst = max(r["init_max_abs_diff"] for r in rows)
    fresh = [r["fresh_mean_abs_diff"] for r in rows]
    h.verdict = stats.SUPPORTED if worst < tolerance else stats.CONTRADICTED
    shapes = len({(r["in_features"], r["out_features"]) for r in rows})
    h.text = (
        f"max |WN+DDI − BN| on the init batch = {worst:.1e} (tolerance {tolerance:g}; "
        f"{shapes} layer shapes × {len({r['seed'] for r in rows})} seeds)"
    )
    result.tables.append(
        Table(
            "WN+DDI vs BN, one layer, ZCA-whitened input (output units have unit variance)",
            [
                "layer",
                "seeds",
                "max |diff| init batch",
                "mean |diff| init batch",
                "mean |diff| fresh batch (median)",
            ],
            [
                [
                    f"{i}→{o}",
                    str(len(group)),
                    f"{max(r['init_max_abs_diff'] for r in group):.1e}",
                    f"{float(np.mean([r['init_mean_abs_diff'] for r in group])):.1e}",
                    f"{float(np.median([r['fresh_mean_abs_diff'] for r in group])):.3f}",
                ]
                for (i, o) in sorted({(r["in_features"], r["out_features"]) for r in rows})
                for group in [[r for r in rows if (r["in_features"], r["out_features"]) == (i, o)]]
            ],
        )
    )
    result.notes.append(
        f"On a fresh whitened batch the two differ by {min(fresh):.3f}–{max(fresh):.3f} output standard deviations "
        "(mean |diff|): BN re-estimates the batch statistics that WN fixed at init. Rule (deterministic, no "
        "bootstrap): supported when the largest init-batch difference is below the benchmark's tolerance."
    )
    return [h]


ANALYSES: dict[str, Callable[..., list[HypothesisResult]]] = {
    "comparison": analyze_comparison,
    "timing": analyze_timing,
    "noise": analyze_noise,
    "lr_robustness": analyze_lr,
    "ddi": analyze_ddi,
}


def seed_spread_table(result: ClaimResult) -> Table:
    """C6: how much a norm's normalized score varies across seeds (standard deviation per cell, then median)."""
    rows = []
    norms = sorted({n for by in result.cell_scores.values() for n in by}, key=norm_order)
    for norm in norms:
        spreads = [
            float(np.std(by[norm], ddof=1)) for by in result.cell_scores.values() if len(by.get(norm, ())) > 1
        ]
        if spreads:
            rows.append([norm, f"{float(np.median(spreads)):.3f}", f"{max(spreads):.3f}", str(len(spreads))])
    return Table(
        "Spread across seeds (std of normalized score within a cell)",
        ["norm", "median over cells", "largest cell", "cells"],
        rows,
    )


def analyze(inputs: Inputs, reps: int | None = None, registry: Registry | None = None) -> list[ClaimResult]:
    """One result per registered claim, whether or not data for it was given (``reps`` bootstrap resamples;
    the registry's default when ``None``)."""
    registry = registry or load_registry()
    reps = reps or registry.defaults.reps
    results: list[ClaimResult] = []
    everything: list[HypothesisResult] = []
    for claim in registry.claims:
        result = ClaimResult(claim.id, claim.statement, claim.metric)
        hyps = ANALYSES[claim.analysis](claim, registry, inputs, reps, result)
        if claim.note:
            result.notes.insert(0, claim.note)
        result.hypotheses = hyps
        everything += hyps
        results.append(result)
    apply_holm(everything, registry, {c.id: registry.rope(c) for c in registry.claims})
    for claim, result in zip(registry.claims, results, strict=True):
        shared = [h for h in result.hypotheses if h.stage == SHARED]
        tuned = [h for h in result.hypotheses if h.stage == TUNED]
        peer = [h for h in result.hypotheses if h.stage == AT_PEER]
        if shared:
            result.headline = shared[0]
            result.verdict = shared[0].verdict
        if tuned:
            result.tuned_headline = tuned[0]
            result.tuned_verdict = tuned[0].verdict
        if peer:
            result.peer_headline = peer[0]
            result.peer_verdict = peer[0].verdict
        statistical = [h for h in result.hypotheses if h.statistical and h.cells]
        if statistical or any(not h.statistical for h in result.hypotheses if h.verdict != NO_DATA):
            result.tables.insert(
                0, hypotheses_table(result.hypotheses, f"{claim.id} hypotheses (pre-registered)")
            )
        for h in result.hypotheses:
            if (
                h.statistical
                and h.cells
                and (
                    h is result.headline
                    or h is result.tuned_headline
                    or h is result.peer_headline
                    or h.family == "supporting"
                )
            ):
                result.tables.append(per_cell_table(h))
            if h.left_out:
                result.notes.append(f"{h.name}: cells without {registry.min_runs(claim)} scored runs per side, left "
                                    f"out: {'; '.join(h.left_out)}.")  # fmt: skip
        if result.iqm:
            result.tables.append(_iqm_table(result.iqm, result.anchors))
        if result.anchors and claim.analysis in ("comparison", "lr_robustness", "noise"):
            result.tables.append(_anchor_table(result.anchors))
        if claim.id == "C6" and result.cell_scores:
            result.tables.append(seed_spread_table(result))
    return results


# -- a user's runs against a reference (wnbench report MINE --reference results/published) -----------------------
def _side(records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, str, str]:
    """(finite headline values, 'median [min, max] n=', steps text) of one arm's scored records."""
    values = np.array([raw_score(r, metric_of(r)[0]) for r in records if metric_of(r)])
    n = len(values)
    values = values[np.isfinite(values)]
    steps = sorted(
        {int((r.get("metrics") or {}).get("total_steps") or r["config"].get("budget", {}).get("steps") or 0)
         for r in records} - {0}
    )  # fmt: skip
    steps_text = ", ".join(f"{s:,}" for s in steps) or "—"
    if not values.size:
        return values, f"diverged n={n}", steps_text
    text = (
        f"{_fmt(float(np.median(values)))} [{_fmt(float(values.min()))}, {_fmt(float(values.max()))}] n={n}"
    )
    return values, text, steps_text


def reference_table(
    mine: Sequence[Mapping[str, Any]], reference: Sequence[Mapping[str, Any]]
) -> Table | None:
    """Cell by cell and arm by arm, a user's headline metric beside the reference's: every (suite, task,
    algorithm, arm) that both hold, with each side's budget in steps (a shorter budget is a different cell in
    all but name), the difference of medians in raw units and P(yours > reference) over all pairs of runs."""

    def by_key(
        records: Sequence[Mapping[str, Any]],
    ) -> dict[tuple[str, str, str, str], list[Mapping[str, Any]]]:
        out: dict[tuple[str, str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
        for r in records:
            if is_scored(r) and stage_of(r) == "eval" and metric_of(r) is not None:
                c = r["config"]
                out[(r["suite"], c["task"], c["algo"], arm_label_of(r))].append(r)
        return out

    ours, theirs = by_key(mine), by_key(reference)
    rows = []
    for key in sorted(set(ours) & set(theirs), key=lambda k: (k[0], k[1], k[2], norm_order(k[3]))):
        suite, task, algo, arm = key
        metric, higher = metric_of(ours[key][0])  # type: ignore[misc]
        x, x_text, x_steps = _side(ours[key])
        y, y_text, y_steps = _side(theirs[key])
        if x.size and y.size:
            diff = _fmt(float(np.median(x) - np.median(y)))
            sign = 1.0 if higher else -1.0
            wins = np.sign(sign * (x[:, None] - y[None, :]))
            prob = f"{float((wins > 0).mean() + 0.5 * (wins == 0).mean()):.2f}"
        else:
            diff = prob = "—"
        rows.append([f"{suite}: {task}/{algo}", arm, metric, f"{x_text} ({x_steps} steps)",
                     f"{y_text} ({y_steps} steps)", diff, prob])  # fmt: skip
    if not rows:
        return None
    return Table(
        "Your runs against the reference, cell by cell (headline metric in raw units; P(yours > reference) is "
        "the share of run pairs where yours is better, ties half)",
        ["cell", "arm", "metric", "yours: median [min, max]", "reference: median [min, max]",
         "median yours − reference", "P(yours > reference)"],
        rows,
    )  # fmt: skip
