"""The report's verdict rules on in-memory records: intervals, equivalence, fixed anchors, cells and budgets,
sensitivity verdicts, raw effects."""

from __future__ import annotations

import numpy as np
import pytest
from report_v2_fixtures import (
    RANDOM_CARTPOLE,
    REPS,
    _c,
    _record,
    _records,
    _registry_v2,  # noqa: F401  (autouse: these tests check the v2 rules)
)

from wnbench.report import Inputs, analyze


def test_a_reversed_cell_is_not_supported_and_its_interval_contains_one_half():
    """The issue's case: two cells favour WN widely, the third favours BN by a wider margin. The seeds-only
    interval was [0.667, 0.667] and called it supported; resampling cells does not."""
    wide = {"weight": [100.0, 101, 102, 103, 104], "batch": [0.0, 1, 2, 3, 4]}
    reversed_ = {"weight": [0.0, 1, 2, 3, 4], "batch": [500.0, 501, 502, 503, 504]}
    records = _records({"A-v0": wide, "B-v0": wide, "C-v0": reversed_})
    c1 = _c(analyze(Inputs(records=records), reps=REPS))
    assert c1.headline.point == pytest.approx(2 / 3)
    assert c1.verdict != "supported" and c1.headline.estimate.contains(0.5)
    assert c1.headline.counts == (2, 1, 0)
    diffs = [c.median_difference.point for c in c1.headline.cells]
    assert diffs == pytest.approx([100.0, 100.0, -500.0])  # effect sizes in raw units, per cell


def test_unequal_run_counts_are_all_used():
    records = _records(
        {"A-v0": {"weight": [5.0, 6, 7, 8, 9, 10, 11], "batch": [0.0, 1, 6.5]},
         "B-v0": {"weight": [1.0, 2, 3], "batch": [0.0, 0.5, 1.5, 2.5, 2.6, 2.7]}}
    )  # fmt: skip
    c1 = _c(analyze(Inputs(records=records), reps=REPS))
    cells = {c.cell: c for c in c1.headline.cells}
    assert (cells["A-v0/ppo"].runs_x, cells["A-v0/ppo"].runs_y) == (7, 3)
    assert (cells["B-v0/ppo"].runs_x, cells["B-v0/ppo"].runs_y) == (3, 6)
    # every pair counts: A: 7 x 3 pairs, batch 6.5 beats 5 and 6 -> 19/21; B: weight 1 beats 0, 0.5; 2 beats
    # 0, 0.5, 1.5; 3 beats all six -> 11/18
    assert cells["A-v0/ppo"].probability.point == pytest.approx(19 / 21)
    assert cells["B-v0/ppo"].probability.point == pytest.approx(11 / 18)
    assert c1.headline.runs == (10, 9)


def test_an_effect_inside_the_equivalence_region_is_equivalent():
    rng = np.random.default_rng(0)
    cells = {}
    for i in range(10):
        values = rng.normal(size=40).round(3).tolist()
        cells[f"T{i}-v0"] = {"weight": values, "batch": values[::-1]}  # the same runs on both sides
    c1 = _c(analyze(Inputs(records=_records(cells)), reps=REPS))
    assert c1.verdict == "equivalent", c1.headline.estimate
    assert c1.headline.estimate.low >= 0.43 and c1.headline.estimate.high <= 0.57


def test_fixed_anchor_normalization_does_not_move_when_a_norm_is_added():
    base = {"CartPole-v1": {"weight": [400.0, 450, 500], "batch": [100.0, 150, 200]}}
    before = _c(analyze(Inputs(records=_records(base)), reps=REPS))
    more = {"CartPole-v1": {**base["CartPole-v1"], "layer": [10.0, 12, 15], "spectral": [500.0, 500, 500]}}
    after = _c(analyze(Inputs(records=_records(more)), reps=REPS))
    cell = "CartPole-v1/ppo"
    assert np.array_equal(before.cell_scores[cell]["weight"], after.cell_scores[cell]["weight"])
    assert before.cell_scores[cell]["weight"] == pytest.approx(
        (np.array([400, 450, 500]) - RANDOM_CARTPOLE) / (500 - RANDOM_CARTPOLE)
    )
    assert before.iqm["batch"].point == pytest.approx(after.iqm["batch"].point)
    assert before.anchors[cell].startswith("fixed")
    # without an anchor (an unknown task) the fallback is min-max, marked, and it does move
    unk = {"Unknown-v0": base["CartPole-v1"]}
    unk_more = {"Unknown-v0": more["CartPole-v1"]}
    a = _c(analyze(Inputs(records=_records(unk)), reps=REPS))
    b = _c(analyze(Inputs(records=_records(unk_more)), reps=REPS))
    assert a.anchors["Unknown-v0/ppo"].startswith("min-max")
    assert not np.allclose(
        a.cell_scores["Unknown-v0/ppo"]["weight"], b.cell_scores["Unknown-v0/ppo"]["weight"]
    )


def test_tuned_and_shared_verdicts_come_side_by_side():
    """Shared rate: BN is as good as WN. Tuned per norm on seeds 1000+: each norm gets its best rate; the
    evaluation runs at the choice decide the tuned verdict."""
    shared = _records({t: {"weight": [10.0, 11, 12], "batch": [10.5, 11.5, 12.5]} for t in ("A-v0", "B-v0")},
                      learning_rate=0.001)  # fmt: skip
    tune, tuned = [], []
    for t in ("A-v0", "B-v0"):
        for norm, best in (("weight", 0.01), ("batch", 0.001)):
            for lr in (0.001, 0.01):
                for seed in (1000, 1001, 1002):
                    value = 50.0 if lr == best else 5.0
                    r = _record(f"{t}{norm}{lr}{seed}", "rl", ["C1"], t, norm, seed, value, learning_rate=lr)
                    r["config"].update(
                        stage="tune",
                        tuning={"keys": ["learning_rate"], "grid": {"learning_rate": [0.001, 0.01]}},
                    )
                    tune.append(r)
            if best != 0.001:
                for seed in range(3):
                    r = _record(
                        f"{t}{norm}tuned{seed}", "rl", ["C1"], t, norm, seed, 100.0 + seed, learning_rate=best
                    )
                    r["config"].update(stage="tuned", tuning={"choice": {"learning_rate": best}})
                    tuned.append(r)
    c1 = _c(analyze(Inputs(records=shared + tune + tuned), reps=REPS))
    assert c1.verdict in ("inconclusive", "contradicted")  # shared: batch slightly ahead in every cell
    assert (
        c1.tuned_verdict == "supported"
    )  # tuned weight (100+) against batch at its own choice (the shared runs)
    assert c1.tuned_headline.runs == (6, 6)
    assert not {r["config"]["seed"] for r in tune} & {r["config"]["seed"] for r in shared + tuned}


def test_an_auc_hypothesis_is_tested_on_auc_not_on_final_return():
    """Both arms end at 500 (final return ties), but weight gets there earlier: the AUC hypothesis sees it."""
    records = _records({"A-v0": {"weight": [500.0] * 3, "batch": [500.0] * 3},
                        "B-v0": {"weight": [500.0] * 3, "batch": [500.0] * 3}})  # fmt: skip
    for r in records:
        r["metrics"]["auc_normalized"] = (400.0 if r["config"]["norm"] == "weight" else 200.0) + r["config"][
            "seed"
        ]
    c1 = _c(analyze(Inputs(records=records), reps=REPS))
    by_name = {h.name: h for h in c1.hypotheses}
    assert c1.headline.point == pytest.approx(0.5)
    auc = by_name["WN > BN (normalized AUC)"]
    assert auc.point == pytest.approx(1.0) and auc.metric == "auc_normalized"


def test_runs_of_one_task_and_algorithm_at_two_budgets_are_two_cells_not_one_arm():
    """A published folder holds the baseline profile's zoo-budget no-norm runs beside the paper profile's shorter
    ones (PPO CartPole 100k and 50k). Pooled, the no-norm arm would mix budgets; the budget splits the cell, read
    from ``budget.steps`` or, where a profile leaves it to the task's config, the zoo's ``n_timesteps``."""
    from wnbench.report.cells import group_cells

    paper = _records({"CartPole-v1": {"none": [400.0, 410, 420], "weight": [450.0, 460, 470]}})
    for r in paper:
        r["config"]["budget"]["steps"] = 50_000
    zoo = _records({"CartPole-v1": {"none": [500.0, 500, 500]}})
    for r in zoo:
        r["config"].update(budget={"steps": None}, resolved={"n_timesteps": 100_000})
        r["run_id"] += "-zoo"
    cells = group_cells(paper + zoo)
    assert set(cells) == {"CartPole-v1/ppo [steps=50000]", "CartPole-v1/ppo [steps=100000]"}
    assert [r["metrics"]["final_return"] for r in cells["CartPole-v1/ppo [steps=50000]"]["none"]] == [
        400,
        410,
        420,
    ]
    assert set(cells["CartPole-v1/ppo [steps=100000]"]) == {"none"}
    assert list(group_cells(paper)) == ["CartPole-v1/ppo"]  # one budget: no split, no suffix


def test_a_parameter_that_differs_in_one_task_splits_that_task_only():
    """Diffusion on ring8 has the baseline profile's 3,000 updates (``hyperparams: {}``) beside the paper
    profile's ``{epochs: 10}``: two cells there. On a task where every run has ``{epochs: 10}``, and on another
    model whose runs all have ``{}``, the parameter splits nothing and the names carry no label for it."""
    from wnbench.report.cells import group_cells

    def gen(task, algo, hyperparams, tag):
        rs = _records({task: {"none": [0.1, 0.2, 0.3], "weight": [0.2, 0.3, 0.4]}})
        for r in rs:
            # no step budget, as generative runs
            r["config"].update(algo=algo, budget={"steps": None}, resolved={})
            r["config"]["params"]["hyperparams"] = hyperparams
            r["run_id"] += tag
        return rs

    records = [
        *gen("ring8", "diffusion", {}, "-base"),
        *gen("ring8", "diffusion", {"epochs": 10}, "-paper"),
        *gen("moons", "diffusion", {"epochs": 10}, "-paper"),
        *gen("moons", "vae", {}, "-paper"),
    ]
    assert set(group_cells(records)) == {
        "ring8/diffusion [hyperparams={}]",
        'ring8/diffusion [hyperparams={"epochs": 10}]',
        "moons/diffusion",
        "moons/vae",
    }


def test_a_cell_whose_baseline_is_below_peer_is_dropped_in_a_sensitivity_verdict_of_its_own():
    """Three PPO cells favour WN, the fourth (Pendulum, no-norm median -900 against the zoo's -172) favours BN
    and has a baseline below peer level. The headline keeps every cell; the at-peer verdict drops that cell
    only, is reported beside it (Markdown, verdicts), and does not enter the headline's Holm family."""
    from wnbench.report.render import VERDICT_HEADER, verdict_rows
    from wnbench.report.results import AT_PEER

    good = {"none": [495.0, 500, 490, 500, 500], "weight": [480.0, 490, 495, 500, 485],
            "batch": [100.0, 120, 90, 110, 105]}  # fmt: skip
    acro = {"none": [-75.0, -74, -76, -73, -75], "weight": [-80.0, -78, -79, -77, -81],
            "batch": [-300.0, -310, -320, -305, -290]}  # fmt: skip
    bad = {"none": [-900.0, -950, -880, -920, -910], "weight": [-1400.0, -1300, -1350, -1380, -1420],
           "batch": [-200.0, -210, -190, -205, -215]}  # fmt: skip
    records = _records({"CartPole-v1": good, "Acrobot-v1": acro, "Pendulum-v1": bad})
    c1 = _c(analyze(Inputs(records=records), reps=REPS))
    assert len(c1.headline.cells) == 3
    assert c1.peer_headline is not None and c1.peer_headline.stage == AT_PEER
    assert [c.cell for c in c1.peer_headline.cells] == ["Acrobot-v1/ppo", "CartPole-v1/ppo"]
    assert c1.peer_headline.point > c1.headline.point
    assert c1.peer_verdict == c1.peer_headline.verdict
    assert any("below peer level in 1 of 3 cells (Pendulum-v1/ppo" in n for n in c1.notes)
    assert c1.peer_headline.family_key != c1.headline.family_key  # its own Holm family
    row = verdict_rows([c1])[0]
    column = VERDICT_HEADER.index("verdict (cells at peer level only)")
    assert len(row) == len(VERDICT_HEADER) and row[column] == c1.peer_verdict
    assert c1.as_dict()["peer_verdict"] == c1.peer_verdict
    # Every baseline at peer level: no sensitivity stage at all.
    at_peer = _c(analyze(Inputs(records=_records({"CartPole-v1": good, "Acrobot-v1": acro})), reps=REPS))
    assert at_peer.peer_verdict is None and all(h.stage != AT_PEER for h in at_peer.hypotheses)


def test_no_sensitivity_verdict_where_the_headline_has_no_data():
    """A published folder of baseline runs only (no BN or WN arm): the peer table still flags the cell below peer,
    but there is no headline to test again, so no at-peer verdict either."""
    records = _records(
        {"Pendulum-v1": {"none": [-900.0, -950, -880]}, "CartPole-v1": {"none": [500.0, 500, 500]}}
    )
    c1 = _c(analyze(Inputs(records=records), reps=REPS))
    assert c1.peer_verdict is None and not any("tested again" in n for n in c1.notes)


@pytest.mark.parametrize("arms", [3, 10, 15, 24])
def test_every_arm_of_a_figure_gets_its_own_colour(arms):
    """The paper profiles plot 10-15 arms in one panel; tab10 cycled and drew two arms in one colour."""
    from wnbench.report.plots import _colors

    colors = _colors([f"arm{i}" for i in range(arms)])
    assert len(colors) == arms and len({tuple(c) for c in colors.values()}) == arms


def test_no_sensitivity_verdict_when_the_below_peer_cell_is_not_one_the_headline_used():
    """C6's headline (weight_ddi > weight) uses only cells holding both arms: a below-peer cell without them must
    not produce a second, identical verdict under the at-peer name."""
    good = {"none": [495.0, 500, 490], "weight": [480.0, 490, 495], "batch": [100.0, 120, 90]}
    acro = {"none": [-75.0, -74, -76], "weight": [-80.0, -78, -79], "batch": [-300.0, -310, -320]}
    bad = {"none": [-900.0, -950, -880], "batch": [-200.0, -210, -190]}  # no WN arm: not in WN > BN
    records = _records({"CartPole-v1": good, "Acrobot-v1": acro, "Pendulum-v1": bad})
    c1 = _c(analyze(Inputs(records=records), reps=REPS))
    assert [c.cell for c in c1.headline.cells] == ["Acrobot-v1/ppo", "CartPole-v1/ppo"]
    assert c1.peer_verdict is None and all(h.stage != "at-peer cells" for h in c1.hypotheses)


def test_the_verdict_row_gives_the_effect_in_raw_units_cell_by_cell():
    """Beside P(X > Y): median(X) - median(Y) per cell in the cell's own units (WN 102 vs BN 2 -> +100)."""
    from wnbench.report.render import VERDICT_HEADER, verdict_rows

    wide = {"weight": [100.0, 101, 102, 103, 104], "batch": [0.0, 1, 2, 3, 4]}
    c1 = _c(analyze(Inputs(records=_records({"A-v0": wide, "B-v0": wide})), reps=REPS))
    effect = verdict_rows([c1])[0][VERDICT_HEADER.index("effect: median X − Y per cell, raw units [95% CI]")]
    assert effect.startswith("A-v0/ppo (final_return) 100 [") and "; B-v0/ppo (final_return) 100 [" in effect
    assert c1.as_dict()["effect_text"] == effect
