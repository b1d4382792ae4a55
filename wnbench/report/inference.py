"""Task-level inference: a claim is decided over tasks, by a method whose family-wise error rate holds at 3-12 tasks.

Input per hypothesis: one estimate per task (the mean over the task's cells of the per-cell statistic) and each
task's within-task sampling variance from its seeds (:func:`task_effects`). Two effect scales: P(X > Y)
(``PROBABILITY``, null 0.5; the per-cell statistic is :func:`stats.cell_probability`) and a difference of mean
(normalized) scores, X minus Y (``DIFFERENCE``, null 0).

The decider (``CHOSEN``): the sign-flip randomization test of the mean over tasks (Fisher 1935, The Design of
Experiments, sec. 21; Pitman 1937, Suppl. JRSS 4:119), with its exact interval from the means of subsets of tasks
(Hartigan 1969, JASA 64:1303). Under the task-level null -- task effects symmetric around the null, tasks
independent -- each task's estimate falls as likely on either side of the null, at any distance, so the test's level is exact at
every number of tasks, with no assumption on the shape of the task estimates. The point estimate is the
report's: the equal-weight mean over tasks (a task with three cells or ten seeds weighs as much as one with one
cell and three seeds). Its price: the smallest two-sided p-value at n tasks is 2 / 2^n, so it cannot decide at 5
tasks (0.0625), decides a lone hypothesis from 6 and the first of a Holm family of 3 from 7. No valid method can
do better when every task is a near-certain win or loss: then only the signs carry information, and all 5 of 5
tasks agree with probability 1/16 under the null.

Chosen by simulation (:mod:`wnbench.report.simulate`; ``wnbench bench inference`` writes the table) over:

- the multi-stage bootstrap over tasks, cells and runs the report used (:mod:`stats`): with 3-5 tasks it can
  draw only a handful of distinct task sets, its interval is too narrow, and it decides a task-level null far
  more often than 5%;
- a Student-t interval over the task estimates (equal weights; the summary-statistics random-effects analysis,
  Holmes & Friston 1998, NeuroImage 7:S754): calibrated on the score-difference scale and when heterogeneity is
  modest, but on the P(X > Y) scale, with task effects large next to seed noise, the estimates pile up near 0
  and 1 -- a symmetric two-humped shape for which the t rejects too often at every task count we tried, most at
  3-5 (over 8 coin flips the t rejects when 7 or 8 agree, which happens 7% of the time);
- random effects with the Hartung-Knapp-Sidik-Jonkman interval (Hartung & Knapp 2001, Stat Med 20:1771;
  Sidik & Jonkman 2002, Stat Med 21:3153; IntHout, Ioannidis & Borm 2014, BMC Med Res Methodol 14:25): it
  assumes known within-task variances, but here they come from 3-10 seeds (and on the P scale are 0, floored,
  when a cell's runs separate completely), and its weights follow their noise: too many decisions under the
  null in most of our settings.

Verdicts, at the level Holm-Bonferroni gives the hypothesis in its family (only hypotheses with at least
``min_tasks`` tasks enter a family): fewer than ``min_tasks`` (5) tasks -> *insufficient data* (described, not
decided); the interval entirely beyond the region of practical equivalence (ROPE) on X's side -> *supported*, on
Y's side -> *contradicted*; entirely inside the ROPE -> *equivalent*; else *inconclusive*. Non-inferiority with
margin m: *supported* when the lower bound is above null - m, *contradicted* when the upper bound is below it.
Each test's p-value is the smallest level at which its interval clears the edge it must clear, so Holm's
ordering and its decisions agree with the intervals printed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from . import stats
from .stats import ALPHA, Cell, Estimate

PROBABILITY, DIFFERENCE = "probability", "difference"
NULLS = {PROBABILITY: 0.5, DIFFERENCE: 0.0}
MIN_TASKS = 5
T_INTERVAL, HKSJ, SIGN_FLIP = "t", "hksj", "sign_flip"
METHODS = (T_INTERVAL, HKSJ, SIGN_FLIP)
#: The method the report decides with (see the module docstring for why).
CHOSEN = SIGN_FLIP
#: P(X > Y)'s seed variance is 0 when a cell's runs separate completely; it is floored at this many
#: comparisons' worth (0.25 / (n_x n_y), a single coin-flip comparison) so inverse-variance weights stay finite.
PROBABILITY_VARIANCE_FLOOR = 0.25
_TINY_VARIANCE = 1e-12


# -- task-level estimates from cells --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskEffects:
    """One hypothesis' per-task estimates (mean over the task's cells) with their within-task variances."""

    tasks: tuple[str, ...]
    estimates: np.ndarray
    variances: np.ndarray | None = None  # within-task (seed) variances; only HKSJ needs them
    cells: tuple[int, ...] = ()  # cells per task
    scale: str = PROBABILITY

    @property
    def null(self) -> float:
        return NULLS[self.scale]


def _probability_variance(cell: Cell, pairs: Sequence[tuple[str, str]]) -> float:
    """DeLong-style variance of a cell's P(X > Y) (mean over arm pairs): each run's share of the win matrices it
    is in (the statistic's first-order projection), its spread over the arm's runs divided by their number."""
    share = {arm: np.zeros(len(cell[arm])) for pair in pairs for arm in pair}
    for a, b in pairs:
        wins = stats.win_matrix(cell[a], cell[b])
        share[a] += wins.mean(axis=1)
        share[b] += wins.mean(axis=0)
    variance = sum(np.var(v / len(pairs), ddof=1) / len(v) for v in share.values() if len(v) > 1)
    n_x = sum(len(cell[a]) for a in dict.fromkeys(a for a, _ in pairs))
    n_y = sum(len(cell[b]) for b in dict.fromkeys(b for _, b in pairs))
    return max(float(variance), PROBABILITY_VARIANCE_FLOOR / (n_x * n_y))


def _difference_effect(cell: Cell, pairs: Sequence[tuple[str, str]]) -> tuple[float, float]:
    """Mean over arm pairs of mean(x) - mean(y), with its variance from the runs."""
    weight: dict[str, float] = {}
    for a, b in pairs:
        weight[a] = weight.get(a, 0.0) + 1.0 / len(pairs)
        weight[b] = weight.get(b, 0.0) - 1.0 / len(pairs)
    point = sum(w * float(np.mean(cell[arm])) for arm, w in weight.items())
    variance = sum(
        w * w * float(np.var(cell[arm], ddof=1)) / len(cell[arm])
        for arm, w in weight.items()
        if len(cell[arm]) > 1
    )
    return point, variance


def cell_effect(
    cell: Cell, x_arms: Sequence[str], y_arms: Sequence[str], scale: str = PROBABILITY
) -> tuple[float, float]:
    """``(point, variance)`` of one cell's effect of X over Y on ``scale``; NaNs when no (x, y) pair has runs."""
    if scale not in NULLS:
        raise ValueError(f"scale: expected one of {sorted(NULLS)}, got {scale!r}")
    pairs = stats._pairs(cell, x_arms, y_arms)
    if not pairs:
        return math.nan, math.nan
    if scale == PROBABILITY:
        return stats.cell_probability(cell, x_arms, y_arms), _probability_variance(cell, pairs)
    return _difference_effect(cell, pairs)


def task_effects(
    cells: Sequence[Cell],
    groups: Sequence[str],
    x_arms: Sequence[str],
    y_arms: Sequence[str],
    scale: str = PROBABILITY,
) -> TaskEffects:
    """Per task (``groups``: each cell's task, in order of first appearance): the mean of its cells' effects and
    the variance of that mean (sum of the cells' variances / k^2). Cells without an (x, y) pair are skipped. On
    the difference scale, pass normalized scores (fixed anchors) so that tasks share a unit."""
    if len(groups) != len(cells):
        raise ValueError(f"groups: {len(groups)} labels for {len(cells)} cells")
    by_task: dict[str, list[tuple[float, float]]] = {}
    for cell, task in zip(cells, groups, strict=True):
        point, variance = cell_effect(cell, x_arms, y_arms, scale)
        if math.isfinite(point):
            by_task.setdefault(task, []).append((point, variance))
    tasks = tuple(by_task)
    est = np.array([np.mean([p for p, _ in by_task[t]]) for t in tasks], dtype=float)
    var = np.array([sum(v for _, v in by_task[t]) / len(by_task[t]) ** 2 for t in tasks], dtype=float)
    return TaskEffects(tasks, est, var, tuple(len(by_task[t]) for t in tasks), scale)


# -- the candidate methods, vectorized over leading axes (replicates, hypotheses) ----------------------------------
@dataclass(frozen=True)
class Location:
    """A location estimate with a t reference distribution: ``point ± t_df(1 - a/2) · se`` (arrays)."""

    point: np.ndarray
    se: np.ndarray
    df: np.ndarray

    def p_greater(self, edge: float | np.ndarray) -> np.ndarray:
        """One-sided p-value of ``effect <= edge`` against ``effect > edge``."""
        return _t_tail(self.point - edge, self.se, self.df)

    def p_less(self, edge: float | np.ndarray) -> np.ndarray:
        """One-sided p-value of ``effect >= edge`` against ``effect < edge``."""
        return _t_tail(edge - self.point, self.se, self.df)

    def interval(self, level: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The two-sided interval at confidence ``1 - level``."""
        with np.errstate(invalid="ignore"):
            half = sps.t.ppf(1 - np.asarray(level) / 2, self.df) * self.se
        return self.point - half, self.point + half


def _t_tail(distance: np.ndarray, se: np.ndarray, df: np.ndarray) -> np.ndarray:
    """P(T_df >= distance / se); an estimate with zero spread is decided by its side alone; an undefined one
    (NaN: fewer than 2 tasks) gives 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, distance / np.where(se > 0, se, 1.0), np.sign(distance) * np.inf)
        z = np.where(np.isnan(se), np.nan, z)
        p = sps.t.sf(z, df)
    return np.where(np.isnan(p) | (distance == 0), np.where(distance == 0, 0.5, 1.0), p)


def t_location(estimates: np.ndarray) -> Location:
    """Student-t over task estimates (last axis), equal weights: mean, sd / sqrt(n), n - 1 df."""
    est = np.asarray(estimates, dtype=float)
    n = est.shape[-1]
    nan = np.full(est.shape[:-1], np.nan)
    point = est.mean(axis=-1) if n else nan
    se = np.std(est, axis=-1, ddof=1) / math.sqrt(n) if n > 1 else nan
    return Location(point, se, np.full(est.shape[:-1], n - 1.0))


def hksj_location(estimates: np.ndarray, variances: np.ndarray) -> Location:
    """Random effects (DerSimonian-Laird between-task variance) with the Hartung-Knapp-Sidik-Jonkman variance
    of the weighted mean and n - 1 df."""
    y = np.asarray(estimates, dtype=float)
    v = np.maximum(np.asarray(variances, dtype=float), _TINY_VARIANCE)
    n = y.shape[-1]
    w = 1.0 / v
    fixed = (w * y).sum(-1, keepdims=True) / w.sum(-1, keepdims=True)
    q = (w * (y - fixed) ** 2).sum(-1)
    c = w.sum(-1) - (w * w).sum(-1) / w.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):  # one task: no between-task variance to estimate
        tau2 = np.where(c > 0, np.maximum(0.0, (q - (n - 1)) / np.where(c > 0, c, 1.0)), 0.0)
    w_star = 1.0 / (v + tau2[..., None])
    mean = (w_star * y).sum(-1) / w_star.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = (w_star * (y - mean[..., None]) ** 2).sum(-1) / (n - 1) if n > 1 else np.nan
        se = np.sqrt(spread / w_star.sum(-1))
    return Location(mean, se, np.full(y.shape[:-1], n - 1.0))


#: Above this many tasks the sign-flip test draws this many random sign patterns (2^16) instead of all 2^n.
EXACT_FLIP_TASKS = 16


def _flip_sets(n: int, rng_seed: int = 0) -> np.ndarray:
    """``(K - 1, n)`` 0/1 rows: the non-empty sets of flipped tasks of all 2^n sign patterns (K = 2^n), or of
    2^16 - 1 random ones above ``EXACT_FLIP_TASKS`` tasks (the unflipped pattern is always the K-th)."""
    if n <= EXACT_FLIP_TASKS:
        return ((np.arange(1, 2**n)[:, None] >> np.arange(n)[None, :]) & 1).astype(float)
    rng = np.random.default_rng(rng_seed)
    return (rng.random((2**EXACT_FLIP_TASKS - 1, n)) < 0.5).astype(float)


@dataclass(frozen=True)
class SignFlip:
    """The sign-flip randomization test of the mean over tasks, with its exact interval (arrays over leading
    axes). Flipping the tasks in set F moves the sum of ``estimates - c`` past the observed one exactly when the
    mean of F's estimates is at most c, so every p-value and bound is a count or an order statistic of the
    subset means (Hartigan 1969)."""

    point: np.ndarray
    subset_means: np.ndarray  # (..., K - 1), sorted
    patterns: int  # K, the unflipped pattern included

    @classmethod
    def of(cls, estimates: np.ndarray) -> SignFlip:
        est = np.asarray(estimates, dtype=float)
        n = est.shape[-1]
        sets = _flip_sets(n)
        means = np.sort(est @ sets.T / np.maximum(sets.sum(axis=1), 1.0), axis=-1)
        point = est.mean(axis=-1) if n else np.full(est.shape[:-1], np.nan)
        return cls(point, means, len(sets) + 1)

    def _count(self, edge: float | np.ndarray, below: bool) -> np.ndarray:
        edge = np.asarray(edge, dtype=float)[..., None]
        tol = 1e-12 * np.maximum(1.0, np.abs(edge))  # ties count as extreme: conservative
        hits = self.subset_means <= edge + tol if below else self.subset_means >= edge - tol
        return hits.sum(axis=-1)

    def p_greater(self, edge: float | np.ndarray) -> np.ndarray:
        """One-sided p-value of ``effect <= edge``: (1 + #subset means <= edge) / K."""
        return (1.0 + self._count(edge, below=True)) / self.patterns

    def p_less(self, edge: float | np.ndarray) -> np.ndarray:
        """One-sided p-value of ``effect >= edge``: (1 + #subset means >= edge) / K."""
        return (1.0 + self._count(edge, below=False)) / self.patterns

    def interval(self, level: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The edges c whose two-sided test at ``level`` does not reject: the k-th smallest and k-th largest
        subset means, k = ceil(level K / 2 - 1); infinite where no k >= 1 exists (too few tasks)."""
        k = np.ceil(np.asarray(level, dtype=float) * self.patterns / 2 - 1).astype(int)
        m = self.subset_means.shape[-1]
        if m == 0 or np.all(k < 1):
            inf = np.full(np.shape(self.point), np.inf)
            return -inf, inf
        idx = np.clip(k, 1, m)
        low = np.take_along_axis(self.subset_means, np.broadcast_to(idx - 1, self.point.shape)[..., None], -1)
        high = np.take_along_axis(
            self.subset_means, np.broadcast_to(m - idx, self.point.shape)[..., None], -1
        )
        return np.where(k >= 1, low[..., 0], -np.inf), np.where(k >= 1, high[..., 0], np.inf)


# -- decision rules ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """What a hypothesis must show: superiority beyond a ROPE of half-width ``rope`` around ``null``, or, with a
    ``margin``, non-inferiority (X not worse than Y by more than ``margin``)."""

    null: float
    rope: float = 0.0
    margin: float | None = None

    def __post_init__(self) -> None:
        if self.rope < 0 or not math.isfinite(self.rope):
            raise ValueError(f"rope: expected a finite half-width >= 0, got {self.rope}")
        if self.margin is not None and (self.margin < 0 or not math.isfinite(self.margin)):
            raise ValueError(f"margin: expected a finite margin >= 0, got {self.margin}")

    @classmethod
    def superiority(cls, scale: str = PROBABILITY, rope: float = 0.0) -> Rule:
        """X better than Y beyond the ROPE around ``scale``'s null (0.5 for P(X > Y), 0 for a difference)."""
        return cls(NULLS[scale], rope)

    @classmethod
    def non_inferiority(cls, scale: str = PROBABILITY, margin: float = 0.0) -> Rule:
        """X not worse than Y by more than ``margin`` on ``scale`` (e.g. "WN-LSTM is not worse than LSTM")."""
        return cls(NULLS[scale], 0.0, margin)

    @property
    def support_edge(self) -> float:
        """The lower bound must exceed this for *supported*."""
        return self.null - self.margin if self.margin is not None else self.null + self.rope

    @property
    def contradict_edge(self) -> float:
        """The upper bound must fall below this for *contradicted*."""
        return self.null - self.margin if self.margin is not None else self.null - self.rope

    @property
    def equivalence(self) -> tuple[float, float] | None:
        """The region an interval must lie in for *equivalent* (superiority rules with a ROPE only)."""
        return (
            None
            if self.margin is not None or self.rope == 0
            else (self.null - self.rope, self.null + self.rope)
        )


def decision_p_values(
    method: str, estimates: np.ndarray, variances: np.ndarray | None, rule: Rule
) -> tuple[np.ndarray, np.ndarray]:
    """``(p, point)`` over the leading axes: p is the smallest level at which the method's two-sided interval
    lies entirely above ``rule.support_edge`` or entirely below ``rule.contradict_edge``."""
    loc = location(method, estimates, variances)
    upper, lower = loc.p_greater(rule.support_edge), loc.p_less(rule.contradict_edge)
    return np.minimum(1.0, 2.0 * np.minimum(upper, lower)), loc.point


def location(method: str, estimates: np.ndarray, variances: np.ndarray | None) -> Location | SignFlip:
    """The method's estimate of the mean task effect, with its p-values and intervals."""
    if method == SIGN_FLIP:
        return SignFlip.of(estimates)
    if method == T_INTERVAL:
        return t_location(estimates)
    if method == HKSJ:
        if variances is None:
            raise ValueError("hksj: needs each task's within-task variance")
        return hksj_location(estimates, variances)
    raise ValueError(f"method: expected one of {METHODS}, got {method!r}")


def holm_rejections(p_values: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Holm step-down (:func:`stats.holm_steps`, :func:`stats.holm_decisions`) along the last axis of ``p_values``
    (each row one family); NaN p-values (hypotheses outside the family) are left out and never rejected."""
    p = np.asarray(p_values, dtype=float)
    flat = p.reshape(-1, p.shape[-1])
    out = np.zeros(flat.shape, dtype=bool)
    for row, values in enumerate(flat):
        members = np.flatnonzero(~np.isnan(values))
        if not len(members):
            continue
        steps = stats.holm_steps(values[members], alpha)
        clears = [values[i] < s.level for i, s in zip(members, steps, strict=True)]
        out[row, members] = stats.holm_decisions(steps, clears)
    return out.reshape(p.shape)


# -- the report's entry point ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskHypothesis:
    """One hypothesis of a family: its task-level estimates and the rule it is judged by."""

    name: str
    effects: TaskEffects
    rule: Rule


@dataclass(frozen=True)
class TaskVerdict:
    """A hypothesis decided over tasks: the interval at its Holm level, the test's p-value, and the verdict."""

    name: str
    n_tasks: int
    method: str
    nominal: Estimate  # at 1 - alpha, before Holm
    estimate: Estimate  # at the Holm level (the nominal one outside a family)
    p_value: float
    holm: stats.HolmStep | None
    rejected: bool
    verdict: str


def verdict_of(estimate: Estimate, rejected: bool, rule: Rule, enough: bool) -> str:
    """The project's vocabulary from an interval at the Holm level and Holm's decision (see the module docstring)."""
    if not enough:
        return stats.INSUFFICIENT
    if rejected and estimate.low > rule.support_edge:
        return stats.SUPPORTED
    if rejected and estimate.high < rule.contradict_edge:
        return stats.CONTRADICTED
    region = rule.equivalence
    if region is not None and region[0] <= estimate.low and estimate.high <= region[1]:
        return stats.EQUIVALENT
    return stats.INCONCLUSIVE


def decide_family(
    hypotheses: Sequence[TaskHypothesis],
    alpha: float = ALPHA,
    min_tasks: int = MIN_TASKS,
    method: str = CHOSEN,
) -> list[TaskVerdict]:
    """Decide one family over tasks: each hypothesis with ``min_tasks`` tasks or more enters Holm; the others are
    described at the nominal level and called *insufficient data*."""
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    p_values, levels = np.full(len(hypotheses), np.nan), [alpha] * len(hypotheses)
    for i, h in enumerate(hypotheses):
        if len(h.effects.estimates) >= max(min_tasks, 2):
            p_values[i] = decision_p_values(method, h.effects.estimates, h.effects.variances, h.rule)[0]
    members = np.flatnonzero(~np.isnan(p_values))
    steps: dict[int, stats.HolmStep] = {}
    if len(members):
        steps = dict(zip(members.tolist(), stats.holm_steps(p_values[members], alpha), strict=True))
        levels = [steps[i].level if i in steps else alpha for i in range(len(hypotheses))]
    rejected = holm_rejections(p_values[None, :], alpha)[0]
    out = []
    for i, h in enumerate(hypotheses):
        with np.errstate(all="ignore"):  # fewer than 2 tasks: described with NaN or infinite bounds
            loc = location(method, h.effects.estimates, h.effects.variances)
            nominal, estimate = _estimate(loc, alpha), _estimate(loc, levels[i])
        enough = i in steps
        out.append(
            TaskVerdict(
                h.name, len(h.effects.estimates), method, nominal, estimate,
                float(p_values[i]), steps.get(i), bool(rejected[i]),
                verdict_of(estimate, bool(rejected[i]), h.rule, enough),
            )
        )  # fmt: skip
    return out


def _estimate(loc: Location | SignFlip, level: float) -> Estimate:
    low, high = loc.interval(level)
    return Estimate(float(loc.point), float(low), float(high), 1.0 - level)
