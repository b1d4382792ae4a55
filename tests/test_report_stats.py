"""Statistics on hand-made arrays with known answers, interval coverage, and the verdict boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from wnbench.report import stats
from wnbench.report.stats import (
    CONTRADICTED,
    INCONCLUSIVE,
    INSUFFICIENT,
    SUPPORTED,
    Estimate,
    iqm,
    normalize_scores,
    probability_of_improvement,
    verdict,
)


def test_iqm_of_one_to_eight_is_four_and_a_half():
    scores = np.arange(1, 9, dtype=float).reshape(8, 1)
    est = iqm(scores, reps=200)
    assert est.point == pytest.approx(4.5)
    assert est.low <= 4.5 <= est.high


def test_probability_of_improvement_known_answers():
    low, high = np.zeros((5, 2)), np.ones((5, 2))
    assert probability_of_improvement(high, low, reps=100).point == pytest.approx(1.0)
    assert probability_of_improvement(low, high, reps=100).point == pytest.approx(0.0)
    assert probability_of_improvement(low, low, reps=100).point == pytest.approx(0.5)  # ties count half
    # one task: X = [1, 2, 3] vs Y = [2, 2, 2] -> (0 + 1/2 + 1) / 3
    x, y = np.array([[1.0], [2.0], [3.0]]), np.array([[2.0], [2.0], [2.0]])
    assert probability_of_improvement(x, y, reps=100).point == pytest.approx(0.5)
    x2 = np.array([[1.0], [3.0], [3.0]])
    assert probability_of_improvement(x2, y, reps=100).point == pytest.approx(2 / 3)


def test_iqm_interval_coverage_is_close_to_nominal():
    """Simulated runs from a known distribution: the 95% interval should contain the true IQM ~95% of the time."""
    rng = np.random.default_rng(0)
    # true IQM of N(0, 1): mean of the middle 50% = 0 by symmetry
    trials, hits = 60, 0
    for trial in range(trials):
        scores = rng.normal(size=(20, 3))
        est = iqm(scores, reps=400, seed=trial)
        hits += est.low <= 0.0 <= est.high
    coverage = hits / trials
    assert 0.83 <= coverage <= 1.0, coverage


def test_verdict_boundaries():
    assert verdict(Estimate(0.7, 0.5001, 0.9), 5, 5) == SUPPORTED
    assert verdict(Estimate(0.7, 0.5, 0.9), 5, 5) == INCONCLUSIVE  # must clear 0.5, not touch it
    assert verdict(Estimate(0.3, 0.1, 0.4999), 5, 5) == CONTRADICTED
    assert verdict(Estimate(0.3, 0.1, 0.5), 5, 5) == INCONCLUSIVE
    assert verdict(Estimate(0.9, 0.8, 0.95), 2, 5) == INSUFFICIENT
    assert verdict(None, 5, 5) == INSUFFICIENT


def test_normalization_scales_each_task_and_scores_diverged_runs_as_the_worst():
    raw = {
        "weight": {"a": [10.0, 20.0, float("nan")], "b": [0.1, 0.3, 0.2]},
        "batch": {"a": [0.0, 5.0, 15.0], "b": [0.2, 0.2, 0.2], "only_batch": [1.0, 2.0, 3.0]},
    }
    mats, tasks = normalize_scores(raw)
    assert tasks == ["a", "b"]  # a task not run by every norm is dropped
    assert mats["weight"].shape == (3, 2)
    assert mats["weight"][:, 0].tolist() == [0.5, 1.0, 0.0]  # NaN (diverged) -> worst value on the task
    assert mats["batch"][:, 1] == pytest.approx([0.5, 0.5, 0.5])
    lower_better, _ = normalize_scores(
        {"x": {"t": [1.0, 3.0]}, "y": {"t": [2.0, 2.0]}}, higher_is_better=False
    )
    assert lower_better["x"][:, 0].tolist() == [1.0, 0.0]


def test_vectorized_probability_of_improvement_equals_rliables():
    """The fast statistic inside the bootstrap is rliable's, ties included, with unequal run counts."""
    from rliable import metrics

    rng = np.random.default_rng(3)
    for runs_x, runs_y, tasks in [(5, 5, 3), (3, 7, 2), (10, 4, 1)]:
        x = rng.integers(0, 4, size=(runs_x, tasks)).astype(float)  # small integers: many ties
        y = rng.integers(0, 4, size=(runs_y, tasks)).astype(float)
        assert stats.mean_probability_of_improvement(x, y) == pytest.approx(
            metrics.probability_of_improvement(x, y)
        )


def test_intervals_do_not_depend_on_numpys_global_random_state():
    """The same data give the same report whatever ran before (arch draws partly from the global generator)."""
    rng = np.random.default_rng(0)
    x, y = rng.random((5, 3)), rng.random((5, 3))
    first = probability_of_improvement(x, y, reps=300), iqm(x, reps=300)
    np.random.seed(5)
    np.random.random(17)
    assert (probability_of_improvement(x, y, reps=300), iqm(x, reps=300)) == first
