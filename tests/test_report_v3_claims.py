"""Registry v3's own measurements on constructed inputs: C5's both-good rule, C6's init sensitivity, C8's held-out
verdict from the ddi benchmark's reach summary."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from wnbench.errors import UserError
from wnbench.report import Inputs
from wnbench.report import stats as report_stats
from wnbench.report.analyses.ddi import analyze_ddi, heldout_verdict, reach_table
from wnbench.report.analyses.init_sensitivity import (
    NOT_MEASURED,
    analyze_init_sensitivity,
    careless_twins,
    cell_sensitivity,
)
from wnbench.report.analyses.lr_robustness import analyze_lr
from wnbench.report.anchors import rl_anchor
from wnbench.report.registry import Claim, Hypothesis, load_registry
from wnbench.report.results import NO_DATA, ClaimResult, HypothesisResult
from wnbench.suite.store import RECORD_SCHEMA

TASKS = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3", "Pendulum-v1",
         "wnbench/CartPoleNoVel-v1", "wnbench/PendulumNoVel-v1")  # fmt: skip


def _record(task: str, norm: str, seed: int, level: float, suite: str, **params) -> dict:
    anchor = rl_anchor(task, "ppo")
    value = anchor.low + (level + 0.01 * (seed - 2)) * (anchor.high - anchor.low)
    return {
        "run_id": f"{suite}-{task}-{norm}-{seed}-{params}", "suite": suite, "claims": [], "status": "finished",
        "config": {"kind": "rl", "task": task, "algo": "ppo", "norm": norm, "norm_spec": {"name": norm},
                   "seed": seed, "params": params, "budget": {"steps": 1000}, "resolved": None},
        "metrics": {"final_return": value}, "curves": {}, "timings": {}, "versions": {}, "schema": RECORD_SCHEMA,
    }  # fmt: skip


# -- C5: both good ------------------------------------------------------------------------------------------------
#: Normalized score per learning rate: weight good at two rates, batch never reaches the floor (0.5 x 0.9).
LR_LEVELS = {"weight": {1e-4: 0.3, 1e-3: 0.9, 1e-2: 0.85}, "batch": {1e-4: 0.1, 1e-3: 0.2, 1e-2: 0.15}}


def _lr_claim(both_good: bool) -> Claim:
    claim = Claim(
        id="C5", statement="WN makes training more robust to the learning rate", analysis="lr_robustness",
        suites=("lr",), metric="good-LR width", tolerance=0.1, floor=0.5,
        hypotheses=(Hypothesis(name="WN wider than BN", x=("weight",), y=("batch",), family="headline"),),
    )  # fmt: skip
    return claim.model_copy(update={"both_good": both_good})


def _lr_result(both_good: bool) -> tuple[ClaimResult, list[HypothesisResult]]:
    records = [_record("CartPole-v1", norm, seed, level, "lr", learning_rate=lr)
               for norm, by_lr in LR_LEVELS.items() for lr, level in by_lr.items() for seed in range(5)]  # fmt: skip
    result = ClaimResult("C5", "", "")
    out = analyze_lr(_lr_claim(both_good), load_registry(), Inputs(records=records), 200, result)
    return result, out


def test_c5_both_good_leaves_out_a_cell_where_one_arm_never_reaches_the_good_level():
    result, [h] = _lr_result(both_good=False)
    assert len(h.cells) == 1  # counted (weight's range against batch's empty one) without the rule
    result, [h] = _lr_result(both_good=True)
    assert not h.cells
    assert any("Both-good rule" in n and "batch" in n for n in result.notes)


#: Both arms good somewhere: weight at all three rates (3 decades wide), batch at 1e-3 only (one grid step).
WIDE_NARROW = {"weight": {1e-4: 0.9, 1e-3: 0.9, 1e-2: 0.85}, "batch": {1e-4: 0.3, 1e-3: 0.9, 1e-2: 0.3}}


def _lr_tasks(n_tasks: int) -> tuple[ClaimResult, list[HypothesisResult]]:
    records = [_record(task, norm, seed, level, "lr", learning_rate=lr) for task in TASKS[:n_tasks]
               for norm, by_lr in WIDE_NARROW.items() for lr, level in by_lr.items() for seed in range(5)]  # fmt: skip
    result = ClaimResult("C5", "", "")
    return result, analyze_lr(_lr_claim(True), load_registry(), Inputs(records=records), 200, result)


def test_c5_under_v3_is_decided_over_tasks_by_the_sign_flip_test():
    """Every task agrees (WN's range 3 decades, BN's 1): at 3 tasks the exact test cannot decide (insufficient,
    below min_tasks 5); at 7 tasks it does (smallest p 2/2^7 under 0.05), with the headline's sensitivity table."""
    result, [h] = _lr_tasks(3)
    assert h.decided and h.decider == "sign_flip" and h.verdict == report_stats.INSUFFICIENT
    assert len(h.tasks) == 3 and h.needs_tasks == 5 and h.point == pytest.approx(1.0)
    assert "over 3 tasks" in h.statistic_text and "needs 5 tasks" in h.statistic_text
    result, [h] = _lr_tasks(7)
    assert h.verdict == report_stats.SUPPORTED and len(h.tasks) == 7 and h.p_value == pytest.approx(2 / 2**7)
    assert h.metric == "good-LR width (decades)" and len(h.cells) == 7
    [sens] = [t for t in result.tables if "sensitivity of the headline" in t.title]
    assert sens.rows[0][0] == "as registered" and {r[0] for r in sens.rows[1:8]} == {
        f"without {t}" for t in TASKS
    }
    assert not any(r[0] == "cells at peer only" for r in sens.rows)  # sweep cells carry no peer grade


def test_c5_under_v3_refuses_a_hypothesis_it_cannot_measure():
    claim = _lr_claim(True)
    bad = claim.hypotheses[0].model_copy(update={"metric": "auc_normalized"})
    records = [_record("CartPole-v1", n, s, 0.9, "lr", learning_rate=lr) for n in ("weight", "batch")
               for lr in (1e-3, 1e-2) for s in range(3)]  # fmt: skip
    with pytest.raises(UserError, match=r"C5: hypotheses\[0\]\.metric"):
        analyze_lr(claim.model_copy(update={"hypotheses": (bad,)}), load_registry(), Inputs(records=records), 200,
                   ClaimResult("C5", "", ""))  # fmt: skip


# -- C6: init sensitivity ---------------------------------------------------------------------------------------------
def _init_records(harm: dict[str, float]) -> list[dict]:
    """Per task: each norm at 0.8 and its careless twins at 0.8 - harm[norm] (gains 10 and 0.1)."""
    out = []
    for task in TASKS:
        for norm, drop in harm.items():
            base, _, opts = norm.partition("[")
            for seed in range(5):
                out.append(_record(task, norm, seed, 0.8, "init"))
                for gain in ("10", "0.1"):
                    label = f"{base}[{opts.rstrip(']') + ',' if opts else ''}init_gain={gain}]"
                    out.append(_record(task, label, seed, 0.8 - drop, "init"))
    return out


C6 = SimpleNamespace(
    id="C6", suites=("init",), rope=None,
    hypotheses=(
        SimpleNamespace(name="WN without DDI is more init-sensitive than BN", x=("weight",),
                        y={"first_of": ["batch[bn_mode=running]", "batch"]}, family="headline", test=None),
        SimpleNamespace(name="DDI removes WN's init sensitivity", x=("weight_ddi",),
                        y={"first_of": ["batch[bn_mode=running]", "batch"]}, family="C6 arms", test="equivalence"),
    ),
)  # fmt: skip


def test_c6_sensitivity_points_at_the_norm_hurt_by_a_careless_init():
    records = _init_records({"weight": 0.5, "weight_ddi": 0.0, "batch[bn_mode=running]": 0.0})
    result = ClaimResult("C6", "", "")
    headline, ddi = analyze_init_sensitivity(C6, load_registry(), Inputs(records=records), 200, result)
    assert headline.verdict == report_stats.SUPPORTED and headline.point == pytest.approx(0.5)
    assert ddi.verdict == report_stats.SUPPORTED  # equivalence with BN's (running statistics: first_of)
    assert "7 tasks" in headline.text and result.status_counts["weight[init_gain=10]"] == {"finished": 35}
    assert sorted(headline.tasks) == sorted(TASKS) == sorted(ddi.tasks)
    assert sorted(headline.as_dict()["tasks"]) == sorted(TASKS)  # what the README counts


def test_c6_reversed_harm_contradicts_and_no_careless_arm_means_not_measured():
    records = _init_records({"weight": 0.0, "weight_ddi": 0.0, "batch[bn_mode=running]": 0.5})
    headline, ddi = analyze_init_sensitivity(
        C6, load_registry(), Inputs(records=records), 200, ClaimResult("C6", "", "")
    )
    assert headline.verdict == report_stats.CONTRADICTED and headline.point == pytest.approx(-0.5)
    assert ddi.verdict == report_stats.CONTRADICTED  # a difference beyond the margin: not equivalent
    result = ClaimResult("C6", "", "")
    plain = [r for r in records if "init_gain" not in r["config"]["norm"]]
    out = analyze_init_sensitivity(C6, load_registry(), Inputs(records=plain), 200, result)
    assert all(h.verdict == NO_DATA for h in out) and NOT_MEASURED in result.notes
    assert not result.status_counts  # the runs without careless-init twins are not counted as C6's


def test_cell_sensitivity_and_twins():
    import numpy as np

    oriented = {"weight": np.array([3.0, 4.0]), "weight[init_gain=10]": np.array([1.0, 2.0]),
                "weight[init_gain=0.1]": np.array([3.0, 4.0]), "weight_ddi[init_gain=10]": np.array([0.0])}  # fmt: skip
    assert careless_twins("weight", list(oriented)) == ["weight[init_gain=10]", "weight[init_gain=0.1]"]
    assert cell_sensitivity(oriented, "weight") == pytest.approx((1.0 + 0.5) / 2)  # ties count half
    assert np.isnan(cell_sensitivity(oriented, "weight_ddi"))


# -- C8: held-out reach ----------------------------------------------------------------------------------------------
def _summary(whitened_one_layer: list[float]) -> list[dict]:
    rows = []
    for inputs, depth, base in (("whitened", 1, None), ("whitened", 2, 0.5), ("raw", 1, 0.8)):
        for i, steps in enumerate((0, 10, 100)):
            diff = whitened_one_layer[i] if base is None else base
            rows += [{"inputs": inputs, "depth": depth, "train_steps": steps, "batch": b, "seeds": 5,
                      "median_mean_abs_diff": diff if b == 512 else 9.0} for b in (32, 512)]  # fmt: skip
    return rows


def _ddi_h() -> HypothesisResult:
    return HypothesisResult("C8", "WN+DDI behaves like BN", "measurement", ("weight_ddi",), ("batch",),
                            statistical=False)  # fmt: skip


def test_c8_supported_when_within_tolerance_at_every_step_count_and_contradicted_when_it_leaves():
    h = _ddi_h()
    heldout_verdict(h, _summary([0.04, 0.09, 0.06]), 0.1)
    assert h.verdict == report_stats.SUPPORTED  # batch-32 rows (9.0) and other settings do not decide
    h = _ddi_h()
    heldout_verdict(h, _summary([0.04, 0.104, 0.06]), 0.1)
    assert h.verdict == report_stats.CONTRADICTED and "after 10 steps" in h.text


def test_c8_table_shows_where_it_stops_and_the_analysis_reads_ddi_json():
    table = reach_table(_summary([0.04, 0.09, 0.06]), 0.1)
    assert table.rows[0][:2] == ["whitened", "1"] and all(c.endswith("✓") for c in table.rows[0][2:])
    assert any(row[:2] == ["whitened", "2"] and row[2].endswith("✗") for row in table.rows)
    claim = SimpleNamespace(id="C8", heldout_tolerance=0.1, headline=SimpleNamespace(
        name="WN+DDI behaves like BN", family="measurement", x=("weight_ddi",), y=("batch",)))  # fmt: skip
    ddi = {"meta": {"reach_summary": _summary([0.04, 0.2, 0.3])},
           "rows": [{"seed": 0, "in_features": 4, "out_features": 2, "init_max_abs_diff": 1e-5,
                     "init_mean_abs_diff": 1e-6, "fresh_mean_abs_diff": 0.05}]}  # fmt: skip
    result = ClaimResult("C8", "", "")
    [h] = analyze_ddi(claim, load_registry(), Inputs(bench={"ddi": ddi}), 0, result)
    assert h.verdict == report_stats.CONTRADICTED and len(result.tables) == 2
