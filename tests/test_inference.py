"""Task-level inference: the chosen decider keeps its family-wise error under task-level nulls at 5-12 tasks, has
power when tasks share an effect, never decides below the task minimum, and its verdict rules behave; the old
bootstrap's inflated error at 3 tasks is reproduced."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

from wnbench.bench.inference import check_args
from wnbench.errors import UserError
from wnbench.report import inference as inf
from wnbench.report import simulate as sim
from wnbench.report import stats


def _effects(estimates, scale=inf.PROBABILITY):
    est = np.asarray(estimates, dtype=float)
    return inf.TaskEffects(
        tuple(f"task{i}" for i in range(len(est))), est, np.full(len(est), 1e-3), scale=scale
    )


def _decide(estimates, rule, **kw):
    return inf.decide_family([inf.TaskHypothesis("h", _effects(estimates), rule)], **kw)[0]


# -- family-wise error and power ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "tasks, scale, cells, seeds",
    [
        (5, inf.PROBABILITY, (1, 3), (3, 10)),
        (8, inf.PROBABILITY, (1, 3), (3, 10)),
        (12, inf.PROBABILITY, (1, 3), (3, 10)),
        (8, inf.PROBABILITY, (1, 1), (3, 4)),
        (12, inf.DIFFERENCE, (2, 3), (5, 10)),
    ],
)
def test_chosen_method_keeps_family_wise_error_under_heterogeneous_task_level_nulls(
    tasks, scale, cells, seeds
):
    """Task effects symmetric around zero with between-task SD twice the seed noise (each task a near-certain win
    or loss), a family of 3 under Holm, ROPE 0 (the strictest test of the null): decisions <= 5% + 2 MCSE."""
    scenario = sim.null_scenario(tasks, cells=cells, seeds=seeds)
    column = sim.Column("chosen", inf.CHOSEN, rope=0.0, min_tasks=inf.MIN_TASKS)
    rate = sim.new_rates(scenario, 2000, seed=tasks, columns=[column], scale=scale)["chosen"]
    assert rate.rate <= rate.bound(stats.ALPHA), rate


def test_t_interval_over_tasks_decides_too_often_when_task_estimates_saturate():
    """Why the t was not chosen: the same null at 5 tasks on the P(X > Y) scale."""
    column = sim.Column("t", inf.T_INTERVAL)
    rate = sim.new_rates(sim.null_scenario(5), 2000, seed=5, columns=[column])["t"]
    assert rate.rate > rate.bound(stats.ALPHA), rate


@pytest.mark.parametrize("tasks", [8, 12])
def test_power_is_high_when_eight_or_more_tasks_share_an_effect(tasks):
    """Every task shares an effect of 1.5 seed-noise SDs (cell P(X > Y) about 0.86, between-task SD 0.25), two
    null hypotheses beside it in a Holm family of 3, the report's rule (ROPE 0.07, >= 5 tasks): power >= 0.8."""
    new = next(c for c in sim.NEW_COLUMNS if c.name == "new")
    assert sim.POWER_EFFECT == 1.5 and new.rope == sim.REPORT_ROPE == 0.07
    rate = sim.new_rates(sim.power_scenario(tasks), 2000, seed=tasks, columns=[new])["new"]
    assert rate.rate >= 0.8, rate


def test_old_bootstrap_decides_a_task_level_null_far_too_often_at_three_tasks():
    """The v2 rule (multi-stage bootstrap, Holm, ``stats.verdict``) on 3 heterogeneous tasks."""
    rate = sim.old_rate(sim.null_scenario(3), reps=80, boot_reps=300, seed=3)
    assert rate.rate > rate.bound(stats.ALPHA), rate


# -- the task minimum and the verdict rules ------------------------------------------------------------------------------
@pytest.mark.parametrize("tasks", [1, 2, 3, 4])
def test_fewer_than_five_tasks_is_insufficient_whatever_the_data(tasks):
    for estimates in ([1.0] * tasks, [0.0] * tasks, np.linspace(0.9, 1.0, tasks)):
        for method in inf.METHODS:
            v = _decide(estimates, inf.Rule.superiority(rope=0.07), method=method)
            assert v.verdict == stats.INSUFFICIENT and not v.rejected and v.holm is None
            assert v.estimate.point == pytest.approx(np.mean(estimates))  # still described
    rates = sim.new_rates(sim.Scenario(tasks, 5.0, 0.25), 200, columns=[sim.NEW_COLUMNS[0]])
    assert rates["new"].rate == 0.0


def test_verdicts_on_constructed_task_estimates():
    rope = inf.Rule.superiority(rope=0.07)
    spread = np.linspace(-0.01, 0.01, 12)
    assert _decide(0.85 + spread, rope).verdict == stats.SUPPORTED
    assert _decide(0.15 + spread, rope).verdict == stats.CONTRADICTED
    equivalent = _decide(0.5 + spread, rope)
    assert equivalent.verdict == stats.EQUIVALENT
    assert equivalent.estimate.low >= 0.43 and equivalent.estimate.high <= 0.57
    # beyond 0.5 but reaching into the ROPE: neither supported nor equivalent
    straddling = _decide(np.linspace(0.52, 0.68, 12), rope)
    assert straddling.estimate.low < 0.57 < straddling.estimate.high
    assert straddling.verdict == stats.INCONCLUSIVE
    # the same data beyond a ROPE of 0: supported
    assert _decide(np.linspace(0.52, 0.68, 12), inf.Rule.superiority()).verdict == stats.SUPPORTED


def test_non_inferiority_verdicts_follow_the_margin():
    margin = inf.Rule.non_inferiority(margin=0.1)
    slightly_worse = _decide(0.47 + np.linspace(-0.02, 0.02, 12), margin)
    assert slightly_worse.estimate.low > 0.4 and slightly_worse.verdict == stats.SUPPORTED
    assert _decide(0.25 + np.linspace(-0.02, 0.02, 12), margin).verdict == stats.CONTRADICTED
    straddling = _decide(np.linspace(0.3, 0.5, 12), margin)
    assert (
        straddling.estimate.low < 0.4 < straddling.estimate.high and straddling.verdict == stats.INCONCLUSIVE
    )
    # a tighter margin turns the first into inconclusive; the difference scale works the same way around 0
    assert _decide(0.47 + np.linspace(-0.02, 0.02, 12), inf.Rule.non_inferiority(margin=0.02)).verdict != (
        stats.SUPPORTED
    )
    diff = inf.Rule.non_inferiority(inf.DIFFERENCE, margin=0.5)
    assert diff.support_edge == -0.5
    assert _decide(-0.2 + np.linspace(-0.1, 0.1, 10), diff).verdict == stats.SUPPORTED


def test_holm_within_a_family_tests_the_weaker_hypothesis_at_the_stricter_level():
    """Two hypotheses at 8 tasks: one with all 8 tasks positive (p = 2/256), one with the smallest of 8 negative
    (p = 4/256 = 0.0156): the second clears 0.05 alone, and Holm's second step (0.05) after the first (0.025)."""
    strong = _effects(np.linspace(0.6, 0.9, 8))
    weaker = _effects(np.r_[0.49, np.linspace(0.6, 0.9, 7)])
    null = _effects(np.r_[0.3, 0.7, 0.4, 0.6, 0.45, 0.55, 0.2, 0.8])
    rule = inf.Rule.superiority()
    family = inf.decide_family([inf.TaskHypothesis(n, e, rule) for n, e in [("s", strong), ("w", weaker)]])
    assert [v.p_value for v in family] == pytest.approx([2 / 256, 4 / 256])
    assert [v.verdict for v in family] == [stats.SUPPORTED, stats.SUPPORTED]
    assert [v.holm.level for v in family] == pytest.approx([0.025, 0.05])
    three = inf.decide_family(
        [inf.TaskHypothesis(n, e, rule) for n, e in [("w", weaker), ("n", null), ("s", strong)]]
    )
    # family of 3: the first step is at 0.05 / 3 = 0.0167, the weaker one's 0.0156 still clears it at step 2 (0.025)
    assert [v.verdict for v in three] == [stats.SUPPORTED, stats.INCONCLUSIVE, stats.SUPPORTED]


# -- the pieces ------------------------------------------------------------------------------------------------------------
def test_sign_flip_p_values_and_interval_agree_with_enumerating_every_sign_pattern():
    rng = np.random.default_rng(0)
    for n in (3, 6, 9):
        x = rng.normal(0.3, 1.0, n)
        flip = inf.SignFlip.of(x)
        patterns = np.array(list(itertools.product([1.0, -1.0], repeat=n)))
        for c in np.linspace(-1.5, 2.0, 15):
            greater = np.mean((patterns * (x - c)).sum(1) >= (x - c).sum() - 1e-12)
            assert flip.p_greater(c) == pytest.approx(greater)
            for level in (0.05, 0.2):
                low, high = flip.interval(level)
                assert (low > c) == (2 * flip.p_greater(c) < level)
                assert (high < c) == (2 * flip.p_less(c) < level)


def test_task_effects_match_the_simulations_vectorized_estimates():
    data = sim.generate(sim.null_scenario(5), 3, np.random.default_rng(1))
    for scale in (inf.PROBABILITY, inf.DIFFERENCE):
        est, var = sim.task_estimates(data, scale)
        for rep, h in itertools.product(range(3), range(3)):
            cells, groups = sim.cells_of(data, rep, h)
            effects = inf.task_effects(cells, groups, ["x"], ["y"], scale)
            assert effects.cells == tuple(data.cells[rep])
            np.testing.assert_allclose(effects.estimates, est[rep, h])
            np.testing.assert_allclose(effects.variances, var[rep, h])


def test_cell_variance_matches_the_spread_of_the_estimate_over_fresh_runs():
    """The within-task variances (HKSJ's weights) are the sampling variances: over 3000 fresh cells of two arms
    against one, the mean estimated variance is within 15% of the observed variance of the estimate."""
    rng = np.random.default_rng(2)
    for scale in (inf.PROBABILITY, inf.DIFFERENCE):
        points, variances = [], []
        for _ in range(3000):
            cell = {"a": rng.normal(0.5, 1, 6), "b": rng.normal(0.2, 1.5, 4), "y": rng.normal(0, 1, 8)}
            p, v = inf.cell_effect(cell, ["a", "b"], ["y"], scale)
            points.append(p), variances.append(v)
        assert np.mean(variances) == pytest.approx(np.var(points), rel=0.15)
    cell = {"a": np.array([1.0, 2.0]), "b": np.array([3.0]), "y": np.array([0.0, 5.0])}
    assert inf.cell_effect(cell, ["a", "b"], ["y"])[0] == stats.cell_probability(cell, ["a", "b"], ["y"])


def test_inference_bench_writes_the_table_and_refuses_bad_arguments(tmp_path):
    run = [sys.executable, "-m", "wnbench.cli", "bench", "inference", "--out", str(tmp_path)]
    proc = subprocess.run(
        [*run, "--reps", "100", "--old-reps", "4", "--boot-reps", "60", "--tasks", "3,8"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "inference.json").read_text())
    settings = {(r["tasks"], r["measure"]) for r in data["rows"]}
    assert settings == {(3, sim.FWER), (3, sim.POWER), (8, sim.FWER), (8, sim.POWER)}
    assert {r["column"] for r in data["rows"]} == {sim.OLD, *(c.name for c in sim.NEW_COLUMNS)}
    assert all(
        0 <= r["rate"] <= 1 and r["reps"] == (4 if r["column"] == sim.OLD else 100) for r in data["rows"]
    )
    markdown = sim.render_inference_table(data)
    assert markdown.count("\n| 3 |") == 2 and "| 8 | power |" in markdown
    assert sim.COLUMN_TITLES["old"] in markdown.splitlines()[0]
    bad = subprocess.run(
        [*run, "--reps", "10", "--old-reps", "-1"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "--reps" in bad.stderr and "--old-reps" in bad.stderr
    with pytest.raises(UserError) as err:
        check_args(1000, 0, 500, [3, 40])
    assert err.value.problems == ["--tasks: expected task counts between 2 and 16, got [3, 40]"]
