"""The peer check's budget rule (wnbench.report.anchors.rl_peer_anchor, cells.peer_grade): a cell run below its
reference's budget is graded against the reference's learning curve at its budget where a point lies within 10%,
is at peer by reaching the final figure, and is otherwise "no reference at this budget" -- never below peer."""

from __future__ import annotations

import pytest

from wnbench.report import anchors
from wnbench.report.anchors import (
    BASIS_CURVE,
    BASIS_FINAL,
    BASIS_REACHED_ONLY,
    rl_peer_anchor,
    set_random_lines,
)
from wnbench.report.cells import AT_PEER_GRADE, BELOW_PEER_GRADE, NO_REFERENCE, peer_checks, peer_grade
from wnbench.suite.store import RECORD_SCHEMA

#: Random policy 0 and a figure of 100 at 100k steps, so a return is its normalized score x 100.
TABLE = {
    "rl": {
        "Plain-v0": {"random": 0.0, "reference": {"ppo": 100.0}},
        "Budgeted-v0": {"random": 0.0, "reference": {"ppo": {"value": 100.0, "steps": 100000}}},
        "Curved-v0": {
            "random": 0.0,
            "reference": {"sac": {"value": 100.0, "steps": 100000, "curve": {30000: 40.0, 60000: 80.0}}},
            "fallback": "sac",
        },
    }
}


@pytest.fixture(autouse=True)
def synthetic_table(monkeypatch):
    monkeypatch.setattr(anchors, "load_anchor_table", lambda path=anchors.ANCHORS_FILE: TABLE)


def _record(task: str, value: float, seed: int, steps: int, zoo_steps: int | None, algo: str = "ppo") -> dict:
    norm = "batch_renorm[placement=pre]" if algo == "crossq" else "none"
    return {
        "run_id": f"{task}-{algo}-{seed}-{steps}", "suite": "t", "claims": [], "status": "finished",
        "config": {"kind": "rl", "task": task, "algo": algo, "norm": norm, "norm_spec": {"name": norm},
                   "seed": seed, "params": {}, "budget": {"steps": steps},
                   "resolved": {"n_timesteps": zoo_steps} if zoo_steps else None},
        "metrics": {"final_return": float(value), "total_steps": steps}, "curves": {}, "timings": {},
        "versions": {}, "schema": RECORD_SCHEMA,
    }  # fmt: skip


def _cell(task: str, median: float, steps: int, zoo_steps: int | None = None, algo: str = "ppo") -> dict:
    recs = [_record(task, median + d, s, steps, zoo_steps, algo) for s, d in enumerate((-1.0, 0.0, 1.0))]
    return {recs[0]["config"]["norm"]: recs}


def test_reduced_budget_without_a_curve_point_is_no_reference_at_this_budget_unless_it_reaches_the_figure():
    anchor = rl_peer_anchor("Budgeted-v0", "ppo", 30000)
    assert anchor.basis == BASIS_REACHED_ONLY and anchor.high == 100.0 and anchor.steps == 100000
    assert peer_grade(_cell("Budgeted-v0", 50.0, 30000)) == NO_REFERENCE
    (check,) = peer_checks(_cell("Budgeted-v0", 50.0, 30000))
    assert check.status.startswith("short budget (30% of the zoo's steps): no reference at this budget")
    assert peer_grade(_cell("Budgeted-v0", 99.0, 30000)) == AT_PEER_GRADE  # reached the 100k figure at 30k
    # a curve point 16% away from the budget does not grade it
    assert peer_grade(_cell("Curved-v0", 20.0, 35000, algo="sac")) == NO_REFERENCE


def test_reduced_budget_with_a_curve_point_is_graded_against_it():
    anchor = rl_peer_anchor("Curved-v0", "sac", 30000)
    assert (anchor.basis, anchor.high, anchor.steps) == (BASIS_CURVE, 40.0, 30000)
    assert rl_peer_anchor("Curved-v0", "sac", 32000).high == 40.0  # within 10% of the point
    assert rl_peer_anchor("Curved-v0", "sac", 58000).high == 80.0  # the nearest point
    assert peer_grade(_cell("Curved-v0", 39.0, 30000, algo="sac")) == AT_PEER_GRADE  # 39/40 >= 0.95
    assert peer_grade(_cell("Curved-v0", 30.0, 30000, algo="sac")) == BELOW_PEER_GRADE
    (check,) = peer_checks(_cell("Curved-v0", 30.0, 30000, algo="sac"))
    assert check.zoo_steps == 30000 and "curve 40 at 30,000" in check.source
    # an algorithm with no entry is graded on the fallback's curve, named as such
    (check,) = peer_checks(_cell("Curved-v0", 39.0, 30000, algo="crossq"))
    assert check.source.startswith("sac (no crossq entry) curve 40") and check.at_peer


def test_v2_style_cells_keep_their_grades():
    # at the zoo's budget (a plain zoo entry takes the record's resolved n_timesteps): below stays below
    assert rl_peer_anchor("Plain-v0", "ppo", 50000, zoo_steps=50000).basis == BASIS_FINAL
    assert peer_grade(_cell("Plain-v0", 50.0, 50000, zoo_steps=50000)) == BELOW_PEER_GRADE
    # half the zoo's budget, reaching the figure (CartPole PPO 50k at 500): at peer by reaching it
    assert peer_grade(_cell("Plain-v0", 100.0, 50000, zoo_steps=100000)) == AT_PEER_GRADE
    # no budget known (no resolved hyperparameters): graded against the figure, as before
    assert peer_grade(_cell("Plain-v0", 50.0, 1000)) == BELOW_PEER_GRADE
    # the figure's own budget (steps) and above: graded against the final figure
    assert peer_grade(_cell("Budgeted-v0", 50.0, 100000)) == BELOW_PEER_GRADE
    assert peer_grade(_cell("Curved-v0", 99.0, 100000, algo="sac")) == AT_PEER_GRADE


def test_no_entry_is_no_reference():
    assert rl_peer_anchor("Unknown-v0", "ppo", 1000) is None
    assert peer_grade(_cell("Unknown-v0", 50.0, 1000)) == NO_REFERENCE


def test_set_random_lines_rewrites_only_the_measured_tasks_random_line():
    text = (
        "# head comment\nrl:\n  A-v0:\n    random: null\n    reference:\n      ppo: 1.0\n"
        "  MinAtar/B-v1:\n    random: null\n  C-v0:\n    random: 3.0\n# other section\ngen_peer:\n  random: null\n"
    )
    out = set_random_lines(text, {"MinAtar/B-v1": 0.4, "C-v0": 2.5})
    assert out.splitlines() == [
        "# head comment", "rl:", "  A-v0:", "    random: null", "    reference:", "      ppo: 1.0",
        "  MinAtar/B-v1:", "    random: 0.4", "  C-v0:", "    random: 2.5", "# other section", "gen_peer:",
        "  random: null",
    ]  # fmt: skip
