"""Statistics behind every verdict: multi-stage (tasks, cells, runs) bootstrap intervals, Holm-Bonferroni step-down
within a family, equivalence regions, per-cell effect sizes, and the verdict rule.

Data enter per cell: ``{arm: 1-D array of one score per run}``, any number of runs per arm and cell (every run
counts; nothing is trimmed to equal counts). Scores are oriented so that higher is better.

- Probability of improvement P(X > Y) of arm set X over arm set Y: per cell, the Mann-Whitney U / (n m) of each
  (x arm, y arm) pair present (ties count half), averaged over the pairs; aggregated as the mean over tasks of the mean over each task's cells. The
  per-pair statistic is rliable's ``metrics.probability_of_improvement`` (a test checks equality).
- Intervals: a multi-stage bootstrap (Davison & Hinkley 1997, sec. 3.8). Given each cell's task (``groups``),
  each resample draws the tasks with replacement, then, inside every drawn task, its cells with replacement, then,
  inside every drawn cell, each arm's runs with replacement; the statistic is the mean over tasks of the mean over
  the task's cells. So disagreement between tasks widens the interval as much as seed noise does, and a task that
  holds three cells (CartPole under PPO, A2C and DQN) weighs as much as a task that holds one. Without ``groups``
  every cell is its own task (the two-stage cells-then-runs bootstrap). With ``resample_cells=False`` it is
  rliable's stratified bootstrap (runs resampled inside fixed cells); a test checks the two agree there.
  Percentile intervals. With few tasks (C1 has 3) a bootstrap over tasks is coarse and, if anything, too narrow
  (its variance is (n-1)/n of the plug-in's): read such an interval as a lower bound on the uncertainty.
- IQM: interquartile mean of all runs of all cells pooled (``scipy.stats.trim_mean(.., 0.25)``, as rliable's
  ``aggregate_iqm``), same bootstrap (tasks, cells, runs).
- Per cell: P(X > Y) and the difference of medians in raw units, each with a bootstrap interval over runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

SUPPORTED, CONTRADICTED, EQUIVALENT, INCONCLUSIVE, INSUFFICIENT = (
    "supported",
    "contradicted",
    "equivalent",
    "inconclusive",
    "insufficient data",
)
ALPHA = 0.05

Cell = Mapping[str, np.ndarray]  # arm -> scores of its runs in this cell


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap interval at ``confidence``."""

    point: float
    low: float
    high: float
    confidence: float = 0.95

    def __str__(self) -> str:
        return f"{self.point:.3f} [{self.low:.3f}, {self.high:.3f}]"

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


# -- point statistics --------------------------------------------------------------------------------------------
def win_matrix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``W[i, j]`` = 1 when run i of x beats run j of y, 0.5 on a tie, 0 otherwise."""
    diff = np.asarray(x, dtype=float)[:, None] - np.asarray(y, dtype=float)[None, :]
    return (diff > 0) + 0.5 * (diff == 0)


def mean_probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """rliable's ``metrics.probability_of_improvement`` for ``(runs, tasks)`` matrices, vectorized (rliable calls
    scipy once per task); equality is a test."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    diff = x[:, None, :] - y[None, :, :]
    wins = (diff > 0).mean(axis=(0, 1)) + 0.5 * (diff == 0).mean(axis=(0, 1))
    return float(wins.mean())


def _pairs(cell: Cell, x_arms: Sequence[str], y_arms: Sequence[str]) -> list[tuple[str, str]]:
    return [(a, b) for a in x_arms if len(cell.get(a, ())) for b in y_arms if len(cell.get(b, ())) and a != b]


def cell_probability(cell: Cell, x_arms: Sequence[str], y_arms: Sequence[str]) -> float:
    """P(X > Y) in one cell: the mean over present (x arm, y arm) pairs of the pair's P(x > y)."""
    pairs = _pairs(cell, x_arms, y_arms)
    return float(np.mean([win_matrix(cell[a], cell[b]).mean() for a, b in pairs])) if pairs else math.nan


def iqm_point(values: np.ndarray) -> float:
    from scipy.stats import trim_mean

    return float(trim_mean(np.asarray(values, dtype=float), proportiontocut=0.25, axis=None))


# -- multi-stage bootstrap ---------------------------------------------------------------------------------------
def task_mean(values: Sequence[float], groups: Sequence[str] | None = None) -> float:
    """The mean over tasks of the mean of each task's cells (the plain mean over cells without ``groups``)."""
    v = np.asarray(values, dtype=float)
    if groups is None:
        return float(v.mean())
    g = np.asarray(groups, dtype=object)
    return float(np.mean([v[g == t].mean() for t in dict.fromkeys(groups)]))


def cell_draws(
    rng: np.random.Generator,
    n_cells: int,
    reps: int,
    resample_cells: bool,
    groups: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(index, weight)``, both ``(reps, slots)``: the cells each resample draws (index -1 for an unused slot) and
    the weight of each slot in the resample's statistic (a slot of a task of k cells, of n tasks, weighs 1/(n k)).
    Stratified (``resample_cells`` false): every cell once, equal weights. Without ``groups`` or when every task
    holds one cell: cells drawn with replacement, equal weights."""
    if groups is not None and len(groups) != n_cells:
        raise ValueError(f"groups: {len(groups)} labels for {n_cells} cells")
    if not resample_cells:
        return np.tile(np.arange(n_cells), (reps, 1)), np.full((reps, n_cells), 1.0 / n_cells)
    tasks = list(dict.fromkeys(groups)) if groups is not None else []
    if groups is None or len(tasks) == n_cells:
        return rng.integers(0, n_cells, size=(reps, n_cells)), np.full((reps, n_cells), 1.0 / n_cells)
    members = [[c for c in range(n_cells) if groups[c] == t] for t in tasks]
    size = np.array([len(m) for m in members])
    width = int(size.max())
    table = np.full((len(tasks), width), -1)
    for t, m in enumerate(members):
        table[t, : len(m)] = m
    drawn = rng.integers(0, len(tasks), size=(reps, len(tasks)))  # tasks
    k = size[drawn][..., None]  # cells in each drawn task
    slot = np.arange(width)[None, None, :]
    within = np.where(slot < k, np.floor(rng.random((reps, len(tasks), width)) * k).astype(int), 0)
    index = np.where(slot < k, table[drawn[..., None], within], -1)
    weight = np.where(slot < k, 1.0 / (len(tasks) * k), 0.0)
    return index.reshape(reps, -1), weight.reshape(reps, -1)


def _resampled_counts(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """``(k, n)``: how often each of n runs is drawn in k bootstrap resamples of size n."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=k).astype(float)


def probability_distribution(
    cells: Sequence[Cell],
    x_arms: Sequence[str],
    y_arms: Sequence[str],
    reps: int = 2000,
    seed: int = 0,
    resample_cells: bool = True,
    groups: Sequence[str] | None = None,
) -> np.ndarray:
    """``reps`` bootstrap replicates of P(X > Y) averaged over cells, or over ``groups`` (each cell's task) and then
    cells: tasks, then cells, then runs resampled (cells and runs without ``groups``; runs only unless
    ``resample_cells``). Every cell must hold at least one run of an x arm and one of a y arm."""
    rng = np.random.default_rng(seed)
    draws, weights = cell_draws(rng, len(cells), reps, resample_cells, groups)
    values = np.zeros(draws.shape)
    for c, cell in enumerate(cells):
        where = draws == c
        k = int(where.sum())
        if not k:
            continue
        pairs = _pairs(cell, x_arms, y_arms)
        # Arms in pair order, not a set's: a set of strings iterates in PYTHONHASHSEED's order, which gave each
        # process its own draws (the published verdicts differed from run to run).
        arms = dict.fromkeys(a for p in pairs for a in p)
        counts = {arm: _resampled_counts(rng, len(cell[arm]), k) for arm in arms}
        total = np.zeros(k)
        for a, b in pairs:
            w = win_matrix(cell[a], cell[b])
            total += np.einsum("ki,ij,kj->k", counts[a], w, counts[b]) / (len(cell[a]) * len(cell[b]))
        values[where] = total / len(pairs)
    return (values * weights).sum(axis=1)


def iqm_distribution(
    cells: Sequence[np.ndarray],
    reps: int = 2000,
    seed: int = 0,
    resample_cells: bool = True,
    groups: Sequence[str] | None = None,
) -> np.ndarray:
    """Bootstrap replicates of the IQM of all runs pooled over cells (runs per cell may differ); tasks, then cells,
    then runs resampled, as :func:`probability_distribution`."""
    rng = np.random.default_rng(seed)
    draws, _ = cell_draws(rng, len(cells), reps, resample_cells, groups)
    arrays = [np.asarray(c, dtype=float) for c in cells]
    out = np.empty(reps)
    for r in range(reps):
        drawn = (arrays[c] for c in draws[r] if c >= 0)
        pooled = np.concatenate([a[rng.integers(0, len(a), len(a))] for a in drawn])
        out[r] = iqm_point(pooled)
    return out


def median_difference_distribution(
    x: np.ndarray, y: np.ndarray, reps: int = 2000, seed: int = 0
) -> np.ndarray:
    """Bootstrap replicates (runs resampled) of median(x) - median(y) in one cell."""
    rng = np.random.default_rng(seed)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    mx = np.median(x[rng.integers(0, len(x), (reps, len(x)))], axis=1)
    my = np.median(y[rng.integers(0, len(y), (reps, len(y)))], axis=1)
    return mx - my


def percentile_interval(point: float, replicates: np.ndarray, confidence: float = 0.95) -> Estimate:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return Estimate(float(point), float(low), float(high), confidence)


def bootstrap_p_value(replicates: np.ndarray, null: float = 0.5) -> float:
    """Two-sided bootstrap p-value of ``null`` (the share of replicates on its far side, doubled)."""
    n = len(replicates)
    below = (np.sum(replicates <= null) + 1) / (n + 1)
    above = (np.sum(replicates >= null) + 1) / (n + 1)
    return float(min(1.0, 2 * min(below, above)))


# -- multiplicity and verdicts -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HolmStep:
    """One hypothesis' place in its family's Holm step-down: the level its interval is built at."""

    rank: int  # 1 = smallest p-value
    family_size: int
    level: float  # alpha / (family_size - rank + 1)
    open: bool  # every hypothesis before it was rejected, so it may be rejected too

    @property
    def confidence(self) -> float:
        return 1.0 - self.level


def holm_steps(p_values: Sequence[float], alpha: float = ALPHA) -> list[HolmStep]:
    """Holm (1979) step-down: sort by p-value, test the k-th at alpha / (m - k + 1), stop at the first that is not
    rejected. Returns each hypothesis' step (in input order); rejection is decided by the caller from the
    interval at ``step.level`` and passed back through :func:`holm_decisions`."""
    m = len(p_values)
    order = np.argsort(np.asarray(p_values, dtype=float), kind="stable")
    steps: list[HolmStep | None] = [None] * m
    for rank, i in enumerate(order, start=1):
        steps[i] = HolmStep(rank, m, alpha / (m - rank + 1), True)
    return steps  # type: ignore[return-value]


def holm_decisions(steps: Sequence[HolmStep], clears: Sequence[bool]) -> list[bool]:
    """Which hypotheses Holm rejects: in rank order, each whose interval (at its step's level) clears the null,
    until the first that does not; all after it stand."""
    rejected = [False] * len(steps)
    for i in sorted(range(len(steps)), key=lambda i: steps[i].rank):
        if not clears[i]:
            break
        rejected[i] = True
    return rejected


def verdict(estimate: Estimate | None, rejected: bool, rope: tuple[float, float], enough: bool) -> str:
    """*equivalent* when the interval lies inside the region of practical equivalence ``rope``; else
    *supported* / *contradicted* when Holm rejects P = 0.5 with the interval above / below 0.5; else
    *inconclusive*; *insufficient data* when the minimum counts are not met."""
    if not enough or estimate is None:
        return INSUFFICIENT
    if rope[0] <= estimate.low and estimate.high <= rope[1]:
        return EQUIVALENT
    if rejected and estimate.low > 0.5:
        return SUPPORTED
    if rejected and estimate.high < 0.5:
        return CONTRADICTED
    return INCONCLUSIVE


def clears(estimate: Estimate | None, null: float = 0.5) -> bool:
    return estimate is not None and (estimate.low > null or estimate.high < null)
