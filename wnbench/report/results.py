"""What an analysis returns: tables, figures, per-cell estimates, hypothesis and claim results."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import stats
from .registry import Claim

NO_DATA = "no data"
SHARED, TUNED = "shared", "tuned"
#: The headline again on the cells whose baseline is at peer level only (a sensitivity check, its own Holm family).
AT_PEER = "at-peer cells"
#: How each stage is named after a hypothesis in tables.
STAGE_SUFFIX = {SHARED: "", TUNED: " (tuned per norm)", AT_PEER: " (cells at peer level only)"}


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
    grade: str = ""  # registry v3's peer gate: at peer, below peer or no reference

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
    # -- registry v3: decided over tasks (wnbench.report.decide), not by the bootstrap; apply_holm leaves it alone
    decided: bool = False
    tasks: tuple[str, ...] = ()  # the tasks its estimate is the mean over
    decider: str = ""  # e.g. "sign_flip"
    needs_tasks: int | None = (
        None  # insufficient: the task count the exact test needs to reach its Holm level
    )
    v2_figure: stats.Estimate | None = None  # the v2 multi-stage bootstrap on the same cells (description)

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
        tasks = f"{len(self.tasks)} task{'s' * (len(self.tasks) != 1)}, " if self.decided else ""
        return f"{tasks}{len(self.cells)} cell{'s' * (len(self.cells) != 1)}, {rx} vs {ry} runs"

    @property
    def effect_text(self) -> str:
        """The effect in raw units, cell by cell: median(X) - median(Y) of the cell's metric with its 95% interval."""
        if not self.cells:
            return "—"
        return "; ".join(
            f"{c.cell} ({c.metric}) {fmt_value(c.median_difference.point)} "
            f"[{fmt_value(c.median_difference.low)}, {fmt_value(c.median_difference.high)}]"
            for c in self.cells
        )

    @property
    def statistic_text(self) -> str:
        if self.decided:
            return self._task_level_text()
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

    def _task_level_text(self) -> str:
        """``P(X > Y) over 4 tasks = 0.62 [0.40, 0.80] (sign_flip, 95%, Holm 1/3); v2 bootstrap: ...``."""
        if self.estimate is None:
            return "—"
        k = len(self.tasks)
        level = f"{self.estimate.confidence:.1%}".replace(".0%", "%")
        holm = (
            f", Holm {self.holm.rank}/{self.holm.family_size}"
            if self.holm and self.holm.family_size > 1
            else ""
        )
        needs = f"; needs {self.needs_tasks} tasks to decide" if self.needs_tasks else ""
        v2 = f"; v2 bootstrap (description): {self.v2_figure}" if self.v2_figure is not None else ""
        est = interval_text(self.estimate)
        return (f"P(X > Y) over {k} task{'s' * (k != 1)} = {est} ({self.decider}, {level}{holm}{needs})"
                f"{v2}")  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        est, nom = self.estimate, self.nominal
        v3 = {} if not self.decided else {
            "decider": self.decider, "tasks": list(self.tasks), "needs_tasks": self.needs_tasks,
            "v2_bootstrap": None if self.v2_figure is None else [self.v2_figure.point, self.v2_figure.low,
                                                                  self.v2_figure.high],
        }  # fmt: skip
        if self.tasks and not self.decided:  # a benchmark rule over tasks (C6) counts them too
            v3["tasks"] = list(self.tasks)
        return {
            **v3,
            "name": self.name,
            "family": self.family,
            "stage": self.stage,
            "x": list(self.x),
            "y": list(self.y),
            "metric": self.metric,
            "verdict": self.verdict,
            "probability": None if est is None else _finite(est.point),
            "ci_low": None if est is None else _finite(est.low),
            "ci_high": None if est is None else _finite(est.high),
            "ci_confidence": None if est is None else est.confidence,
            "nominal_ci": None if nom is None else [_finite(nom.low), _finite(nom.high)],
            "cell_weighted": None if self.cell_level is None else
            [self.cell_level.point, self.cell_level.low, self.cell_level.high],
            "p_value": self.p_value,
            "holm_rank": None if self.holm is None else [self.holm.rank, self.holm.family_size],
            "cells": len(self.cells),
            "direction_counts": list(self.counts),
            "runs": list(self.runs),
            "left_out": self.left_out,
            "text": self.text or (self._task_level_text() if self.decided else ""),
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
    #: the registry entry the claim was analyzed under (how it is shown: figures, W&B panels); not serialized
    registered: Claim | None = field(default=None, repr=False)
    #: the registry the verdict used: "version 3, dated 2026-12-06"
    registry: str = ""

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
            "registry": self.registry,
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


def interval_text(est: stats.Estimate) -> str:
    """``0.620 [0.410, 0.800]``, or ``0.870 [unbounded]`` where the interval has no finite bound (a sign-flip
    interval over too few tasks to reach its level)."""
    if math.isfinite(est.low) and math.isfinite(est.high):
        return str(est)
    return f"{est.point:.3f} [unbounded]"


def _finite(value: float | None) -> float | None:
    """``None`` for an infinite or NaN bound (a sign-flip interval over fewer than 6 tasks is unbounded)."""
    return None if value is None or not math.isfinite(value) else value


def fmt_value(value: float | None, digits: int = 4) -> str:
    """A number as the report prints it: ``—`` when missing, scientific when tiny or huge, else ``digits`` digits."""
    if value is None or not math.isfinite(value):
        return "—"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.2e}"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.{digits}g}"
