"""Statistics with known answers: the bootstrap against rliable where both apply, coverage with between-cell and
between-task variance, task weighting, Holm step-down, the verdict rule and the equivalence region, fixed anchors,
arm matching."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from wnbench.report import stats
from wnbench.report.anchors import rl_anchor
from wnbench.report.hypotheses import apply_holm
from wnbench.report.registry import arm_of, canonical, load_registry
from wnbench.report.results import HypothesisResult
from wnbench.report.stats import (
    CONTRADICTED,
    EQUIVALENT,
    INCONCLUSIVE,
    INSUFFICIENT,
    SUPPORTED,
    Estimate,
    verdict,
)


def _rliable_interval(score_dict, func, reps, seed=0):
    import warnings

    from rliable import library as rly

    np.random.seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        points, cis = rly.get_interval_estimates(
            score_dict, func, reps=reps, random_state=np.random.RandomState(seed)
        )
    key = next(iter(score_dict))
    return float(np.asarray(points[key]).reshape(-1)[0]), np.asarray(cis[key]).reshape(2, -1)[:, 0]


def test_vectorized_probability_of_improvement_equals_rliables():
    from rliable import metrics

    rng = np.random.default_rng(3)
    for runs_x, runs_y, tasks in [(5, 5, 3), (3, 7, 2), (10, 4, 1)]:
        x = rng.integers(0, 4, size=(runs_x, tasks)).astype(float)  # small integers: many ties
        y = rng.integers(0, 4, size=(runs_y, tasks)).astype(float)
        assert stats.mean_probability_of_improvement(x, y) == pytest.approx(
            metrics.probability_of_improvement(x, y)
        )
        cells = [{"x": x[:, t], "y": y[:, t]} for t in range(tasks)]
        assert np.mean([stats.cell_probability(c, ["x"], ["y"]) for c in cells]) == pytest.approx(
            metrics.probability_of_improvement(x, y)
        )


def test_stratified_intervals_match_rliables_where_both_apply():
    """Equal run counts, cells held fixed: our bootstrap is rliable's stratified bootstrap (different draws)."""
    from rliable import metrics

    rng = np.random.default_rng(0)
    x, y = rng.normal(0.3, 1, size=(10, 4)), rng.normal(0, 1, size=(10, 4))
    reps = 3000
    # rliable's bootstrap around our vectorized statistic (equal to rliable's, test above; scipy's is ~40x slower)
    point, (low, high) = _rliable_interval({"p": [x, y]}, stats.mean_probability_of_improvement, reps)
    cells = [{"x": x[:, t], "y": y[:, t]} for t in range(4)]
    ours = stats.probability_distribution(cells, ["x"], ["y"], reps=reps, resample_cells=False)
    est = stats.percentile_interval(point, ours)
    assert est.low == pytest.approx(low, abs=0.02) and est.high == pytest.approx(high, abs=0.02)
    point, (low, high) = _rliable_interval({"s": x}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps)
    assert stats.iqm_point(x) == pytest.approx(point)
    ours = stats.iqm_distribution([x[:, t] for t in range(4)], reps=reps, resample_cells=False)
    est = stats.percentile_interval(point, ours)
    assert est.low == pytest.approx(low, abs=0.05) and est.high == pytest.approx(high, abs=0.05)


def _simulate(rng, cells, runs, mu, tau):
    effects = rng.normal(mu, tau, size=cells)
    return [{"x": rng.normal(e, 1, size=runs), "y": rng.normal(0, 1, size=runs)} for e in effects]


def test_two_stage_interval_covers_the_task_level_truth_close_to_nominal():
    """Cells differ (between-cell sd 0.8 on a within-cell sd of 1): the two-stage 95% interval covers the
    population P(X > Y) = Phi(mu / sqrt(2 + tau^2)) close to 95% of the time; holding cells fixed does not."""
    from scipy.stats import norm

    rng = np.random.default_rng(1)
    mu, tau, sims = 0.4, 0.8, 200
    truth = norm.cdf(mu / math.sqrt(2 + tau**2))
    hits = {True: 0, False: 0}
    for sim in range(sims):
        cells = _simulate(rng, 10, 6, mu, tau)
        point = np.mean([stats.cell_probability(c, ["x"], ["y"]) for c in cells])
        for resample_cells in (True, False):
            reps = stats.probability_distribution(
                cells, ["x"], ["y"], reps=200, seed=sim, resample_cells=resample_cells
            )
            hits[resample_cells] += stats.percentile_interval(point, reps).contains(truth)
    assert 0.90 <= hits[True] / sims <= 0.995, hits
    assert hits[False] / sims < 0.85, hits  # seeds-only intervals ignore task-level uncertainty


def test_reversed_cell_widens_the_interval_to_contain_one_half():
    """Two cells favour X completely, the third favours Y completely: P = 2/3, but over tasks it is uncertain."""
    good = {"x": np.array([10.0, 11, 12, 13, 14]), "y": np.array([0.0, 1, 2, 3, 4])}
    bad = {"x": np.array([0.0, 1, 2, 3, 4]), "y": np.array([100.0, 101, 102, 103, 104])}
    cells = [good, good, bad]
    point = np.mean([stats.cell_probability(c, ["x"], ["y"]) for c in cells])
    assert point == pytest.approx(2 / 3)
    fixed = stats.percentile_interval(
        point, stats.probability_distribution(cells, ["x"], ["y"], resample_cells=False)
    )
    assert (fixed.low, fixed.high) == pytest.approx((2 / 3, 2 / 3))  # the old, seeds-only interval
    est = stats.percentile_interval(point, stats.probability_distribution(cells, ["x"], ["y"]))
    assert est.contains(0.5) and est.low <= 1 / 3 and est.high == 1.0


def test_a_task_with_three_cells_weighs_as_much_as_a_task_with_one():
    """Three cells of one task (CartPole under three algorithms) favour X completely, the one cell of another task
    favours Y completely: over cells P = 3/4 with an interval above 1/2; over tasks P = 1/2 and the interval spans
    every value the two tasks allow."""
    good = {"x": np.array([10.0, 11, 12, 13, 14]), "y": np.array([0.0, 1, 2, 3, 4])}
    bad = {"x": np.array([0.0, 1, 2, 3, 4]), "y": np.array([100.0, 101, 102, 103, 104])}
    cells, groups = [good, good, good, bad], ["CartPole", "CartPole", "CartPole", "Pendulum"]
    points = [stats.cell_probability(c, ["x"], ["y"]) for c in cells]
    assert stats.task_mean(points) == pytest.approx(0.75)
    assert stats.task_mean(points, groups) == pytest.approx(0.5)
    by_cell = stats.percentile_interval(0.75, stats.probability_distribution(cells, ["x"], ["y"]))
    assert by_cell.low > 0.0 and not by_cell.contains(0.0)
    by_task = stats.percentile_interval(
        0.5, stats.probability_distribution(cells, ["x"], ["y"], groups=groups)
    )
    assert (by_task.low, by_task.high) == pytest.approx((0.0, 1.0))


def test_tasks_of_one_cell_each_are_the_cell_level_bootstrap():
    rng = np.random.default_rng(5)
    cells = _simulate(rng, 5, 4, 0.3, 0.5)
    plain = stats.probability_distribution(cells, ["x"], ["y"], reps=300, seed=2)
    grouped = stats.probability_distribution(cells, ["x"], ["y"], reps=300, seed=2, groups=list("abcde"))
    assert np.allclose(plain, grouped)
    with pytest.raises(ValueError, match="groups"):
        stats.probability_distribution(cells, ["x"], ["y"], reps=10, groups=["a"])


def test_task_level_interval_covers_the_truth_when_cells_of_a_task_agree():
    """Cells share their task's effect (between-task sd 1, between cells of a task 0.1): 12 tasks of 3 cells, 10 runs a side. The
    task-level interval covers the population P(X > Y) close to 95% of the time; treating the 36 cells as
    independent does not (it counts each task three times)."""
    from scipy.stats import norm

    rng = np.random.default_rng(7)
    mu, tau, sims, tasks, per = 0.4, 1.0, 150, 12, 3
    truth = norm.cdf(mu / math.sqrt(2 + tau**2 + 0.1**2))
    groups = [str(t) for t in range(tasks) for _ in range(per)]
    hits = {"tasks": 0, "cells": 0}
    for sim in range(sims):
        effects = np.repeat(rng.normal(mu, tau, size=tasks), per) + rng.normal(0, 0.1, size=tasks * per)
        cells = [{"x": rng.normal(e, 1, size=10), "y": rng.normal(0, 1, size=10)} for e in effects]
        point = stats.task_mean([stats.cell_probability(c, ["x"], ["y"]) for c in cells], groups)
        for key, g in (("tasks", groups), ("cells", None)):
            reps = stats.probability_distribution(cells, ["x"], ["y"], reps=200, seed=sim, groups=g)
            hits[key] += stats.percentile_interval(point, reps).contains(truth)
    assert 0.88 <= hits["tasks"] / sims <= 0.995, hits
    assert hits["cells"] / sims < 0.85, hits


def test_arm_sets_average_over_arm_pairs():
    cell = {"a": np.array([1.0, 2.0]), "b": np.array([5.0]), "c": np.array([0.0]), "d": np.array([3.0])}
    # pairs (a,c)=1, (a,d)=0, (b,c)=1, (b,d)=1 -> 3/4
    assert stats.cell_probability(cell, ["a", "b"], ["c", "d"]) == pytest.approx(0.75)
    assert math.isnan(stats.cell_probability(cell, ["a"], ["missing"]))


def test_verdict_rule_and_equivalence_region():
    rope = (0.43, 0.57)
    assert verdict(Estimate(0.7, 0.55, 0.9), True, rope, True) == SUPPORTED
    assert verdict(Estimate(0.7, 0.55, 0.9), False, rope, True) == INCONCLUSIVE  # Holm did not reject
    assert verdict(Estimate(0.3, 0.1, 0.45), True, rope, True) == CONTRADICTED
    assert verdict(Estimate(0.5, 0.45, 0.55), False, rope, True) == EQUIVALENT
    assert verdict(Estimate(0.52, 0.501, 0.56), True, rope, True) == EQUIVALENT  # real but negligible
    assert verdict(Estimate(0.5, 0.40, 0.55), False, rope, True) == INCONCLUSIVE
    assert verdict(Estimate(0.9, 0.8, 0.95), True, rope, False) == INSUFFICIENT


def _hyp(name, replicates, family="f"):
    h = HypothesisResult("C1", name, family, ("weight",), ("batch",))
    h.replicates = np.asarray(replicates, dtype=float)
    h.point = float(np.median(h.replicates))
    h.p_value = stats.bootstrap_p_value(h.replicates)
    h.enough = True
    h.cells = []
    return h


def test_holm_turns_a_borderline_supported_into_inconclusive():
    """1.5% of the replicates fall below 0.5 (p ~ 0.031): alone, the 95% interval clears 0.5; as the first of
    two hypotheses Holm tests it at 2.5%, its 97.5% interval does not clear, and the step-down stops."""
    registry = load_registry()
    borderline = [0.45] * 30 + [0.6] * 1970
    alone = _hyp("a", borderline)
    apply_holm([alone], registry, {"C1": 0.07})
    assert alone.verdict == SUPPORTED and alone.holm.family_size == 1
    first, second = _hyp("a", borderline), _hyp("b", [0.45] * 35 + [0.6] * 1965)
    apply_holm([first, second], registry, {"C1": 0.07})
    assert first.holm.rank == 1 and first.holm.level == pytest.approx(0.025)
    assert first.verdict == INCONCLUSIVE and second.verdict == INCONCLUSIVE
    assert stats.clears(
        stats.percentile_interval(0.6, np.asarray(first.replicates), 0.95)
    )  # it cleared before Holm
    # another family does not count against it
    other = _hyp("c", [0.45] * 35 + [0.6] * 1965, family="g")
    third = _hyp("a", borderline)
    apply_holm([third, other], registry, {"C1": 0.07})
    assert third.verdict == SUPPORTED


def test_holm_step_down_levels():
    steps = stats.holm_steps([0.04, 0.001, 0.02])
    assert [s.rank for s in steps] == [3, 1, 2]
    assert [round(s.level, 4) for s in steps] == [0.05, round(0.05 / 3, 4), 0.025]
    assert stats.holm_decisions(steps, [True, True, False]) == [False, True, False]  # stops at rank 2


def test_fixed_anchor_for_rl_is_the_random_policy_and_the_zoo_reference():
    anchor = rl_anchor("CartPole-v1", "ppo")
    assert anchor.fixed and anchor.high == 500.0 and 15 < anchor.low < 30  # random CartPole lasts ~22 steps
    assert anchor.normalize(np.array([anchor.low, 500.0])).tolist() == [0.0, 1.0]
    crossq = rl_anchor("Pendulum-v1", "crossq")
    assert crossq.high == pytest.approx(-156.995) and "no crossq entry" in crossq.source
    assert rl_anchor("NoSuchTask-v0", "ppo") is None


def test_arms_match_labels_by_base_name_options_and_aliases():
    arms = load_registry("v2").arms()  # the v2 arms name batch_renorm itself
    assert arm_of("batch_renorm[warmup_steps=1000]", arms) == "batch_renorm"
    assert arm_of("batch[bn_mode=running]", arms) == "batch[bn_mode=running]"
    assert arm_of("batch[bn_mode=running,momentum=0.1]", arms) == "batch[bn_mode=running]"
    assert arm_of("batch[momentum=0.1]", arms) == "batch"
    assert (
        arm_of("weight_meanonly", arms) == "weight+meanonly"
        and canonical("weight_meanonly") == "weight+meanonly"
    )
    assert arm_of("none+layer", arms) == "layer"
    assert arm_of("spectral", ["weight", "batch"]) is None


def test_intervals_do_not_depend_on_numpys_global_random_state():
    rng = np.random.default_rng(0)
    cells = [{"x": rng.random(5), "y": rng.random(4)} for _ in range(3)]
    first = stats.probability_distribution(cells, ["x"], ["y"], reps=300)
    np.random.seed(5)
    assert np.array_equal(stats.probability_distribution(cells, ["x"], ["y"], reps=300), first)


def test_bootstrap_replicates_do_not_depend_on_the_process_hash_seed():
    """The published verdicts must come out the same in every process: the resampling once iterated a set of arm
    names, whose order follows PYTHONHASHSEED, and two `wnbench report` runs of the same records differed."""
    import subprocess
    import sys

    code = (
        "import numpy as np; from wnbench.report import stats; "
        "cell = {'x:weight': np.arange(5.0), 'x:weight_ddi': np.arange(5.0) + 0.5, "
        "'y:batch': np.arange(5.0) + 1, 'y:batch_renorm': np.arange(5.0) - 1}; "
        "r = stats.probability_distribution([cell, cell], ['x:weight', 'x:weight_ddi'], "
        "['y:batch', 'y:batch_renorm'], reps=200, seed=3); print(repr(r.round(12).tolist()))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": str(h)},
            capture_output=True, text=True, check=True,
        ).stdout
        for h in (0, 1, 2, 3)
    }  # fmt: skip
    assert len(outs) == 1


def test_performance_profile_weighs_tasks_equally_and_its_band_spans_them():
    from wnbench.report.plots import profile_with_band

    high, low = np.ones(5), np.zeros(5)
    taus = np.array([0.5])
    point, band = profile_with_band([high, high, low], taus, reps=200, groups=["a", "a", "b"])
    assert point[0] == pytest.approx(0.5)  # not 2/3: task a's two cells count once
    assert band[:, 0] == pytest.approx([0.0, 1.0])
    point, _ = profile_with_band([high, high, low], taus, reps=50)
    assert point[0] == pytest.approx(2 / 3)
