"""The practitioner's matrix on constructed records: fixed RL anchors, best arm (★) and ≈ marks, compact cells,
row task counts, left-out cells, and its place in the report."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from wnbench.report import Inputs
from wnbench.report.anchors import rl_anchor
from wnbench.report.matrix import MatrixSpec, build_matrix
from wnbench.report.render import markdown, matrix_markdown
from wnbench.suite.store import RECORD_SCHEMA

#: RL tasks with fixed anchors (anchors.yaml): seven, so a 95% sign-flip interval exists (it needs 6).
TASKS = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3", "Pendulum-v1",
         "wnbench/CartPoleNoVel-v1", "wnbench/PendulumNoVel-v1")  # fmt: skip
COLUMNS = ("none", "layer", "weight", "batch")
#: Normalized score per arm (0 = random policy, 1 = rl-zoo): weight best, batch far behind, and layer level with
#: weight across tasks (0.92 on three tasks, 0.88 on four: median effect 0.38, P(weight > layer) 0.4 or 0.6).
LEVEL = {"none": 0.5, "weight": 0.9, "batch": 0.1}
LAYER = {task: 0.92 if i % 2 else 0.88 for i, task in enumerate(TASKS)}
SPEC = MatrixSpec(rows=("on-policy", "value-based"), columns=COLUMNS, cell_width=40, margin=0.07, min_runs=3)
#: A registry with one learning-rate claim: its suite's records are a sweep, not the matrix's.
LR_ONLY = SimpleNamespace(claims=(SimpleNamespace(id="C5", analysis="lr_robustness", suites=("rl-lr",)),))


def _record(task: str, algo: str, norm: str, seed: int, level: float) -> dict:
    anchor = rl_anchor(task, algo)
    low, high = (anchor.low, anchor.high) if anchor else (0.0, 100.0)
    jitter = 0.03 * ((seed + len(task) + 3 * len(norm)) % 5 - 2)  # seed noise, mean 0 over 5 seeds
    value = low + (level + jitter) * (high - low)
    return {
        "run_id": f"{task}-{algo}-{norm}-{seed}", "suite": "rl-v3", "claims": [], "status": "finished",
        "config": {"kind": "rl", "task": task, "algo": algo, "norm": norm, "norm_spec": {"name": norm},
                   "seed": seed, "params": {}, "budget": {"steps": 1000}, "resolved": None},
        "metrics": {"final_return": value, "auc_normalized": low + (level / 2) * (high - low)},
        "curves": {}, "timings": {}, "versions": {}, "schema": RECORD_SCHEMA,
    }  # fmt: skip


def _records(tasks=TASKS, algo: str = "ppo", seeds: int = 5) -> list[dict]:
    levels = [(t, n, lv) for t in tasks for n, lv in LEVEL.items()] + [
        (t, "layer", LAYER.get(t, 0.9)) for t in tasks
    ]
    return [_record(t, algo, n, s, lv) for t, n, lv in levels for s in range(seeds)]


OVERHEAD = {"rows": [{"model": "mlp", "norm": n, "train_step_ratio": r}
                     for n, r in (("none", 1.0), ("weight", 1.08), ("batch", 1.24))]}  # fmt: skip


@pytest.fixture(scope="module")
def matrix():
    records = _records() + _records(TASKS[:2], "dqn") + _records(("Unanchored-v0",), "a2c")
    # a learning-rate sweep's cells and careless-init arms, on every task, where weight collapses: they would
    # move weight's median if they counted
    sweep = [{**r, "suite": "rl-lr", "run_id": "lr-" + r["run_id"], "config": {**r["config"], "params": {"lr": 1.0}}}
             for r in _records() if r["config"]["norm"] in ("none", "weight")]  # fmt: skip
    careless = [{**r, "run_id": "careless-" + r["run_id"],
                 "config": {**r["config"], "norm": "weight[init_gain=10]"}} for r in _records()
                if r["config"]["norm"] == "weight"]  # fmt: skip
    for r in sweep + careless:
        if r["config"]["norm"] != "none":
            r["metrics"] = {"final_return": -1e6}
    inputs = Inputs(records=records + sweep + careless, bench={"overhead": OVERHEAD})
    return build_matrix(inputs, LR_ONLY, SPEC)


def test_entries_are_fixed_anchor_normalized_differences_against_no_norm(matrix):
    row = next(r for r in matrix.rows if r.name == "on-policy")
    for arm, level in LEVEL.items():
        assert row.entries[arm].median == pytest.approx(level - LEVEL["none"], abs=1e-6), arm
    assert row.entries["layer"].median == pytest.approx(0.38, abs=1e-6)
    assert row.entries["weight"].auc == pytest.approx((0.9 - 0.5) / 2, abs=0.01)  # AUC on the same anchors
    assert row.entries["weight"].cost == pytest.approx(1.08) and row.entries["layer"].cost is None
    low, high = row.entries["weight"].low, row.entries["weight"].high
    assert np.isfinite(low) and low <= row.entries["weight"].median <= high


def test_best_arm_is_starred_and_only_arms_not_shown_worse_are_marked_indistinguishable(matrix):
    row = next(r for r in matrix.rows if r.name == "on-policy")
    assert [e.arm for e in row.entries.values() if e.best] == ["weight"]
    assert row.entries["layer"].tied  # ahead on three tasks, behind on four
    assert not row.entries["batch"].tied and not row.entries["none"].tied
    assert row.entries["batch"].p_best[1] > 0.5 + SPEC.margin
    assert row.entries["weight"].text().startswith("★") and row.entries["layer"].text().startswith("≈")


def test_rows_count_their_tasks_and_a_cell_without_fixed_anchor_is_left_out(matrix):
    labels = {r.name: r.label for r in matrix.rows}
    assert labels["on-policy"] == "on-policy (7 tasks)" and labels["value-based"] == "value-based (2 tasks)"
    on_policy = next(r for r in matrix.rows if r.name == "on-policy")
    assert "Unanchored-v0" not in on_policy.tasks
    assert any("Unanchored-v0" in line and "no fixed anchor" in line for line in on_policy.left_out)
    value_based = next(r for r in matrix.rows if r.name == "value-based")
    assert "[—]" in value_based.entries["weight"].text()  # 2 tasks: no 95% interval exists
    assert all(e.tied or e.best for e in value_based.entries.values())


def test_compact_table_cells_fit_the_registry_width(matrix):
    table = matrix.table()
    assert table.header == ["row", *COLUMNS]
    widths = [len(cell) for row in table.rows for cell in row[1:]]
    assert widths and max(widths) <= SPEC.cell_width
    assert any(
        len(c) > 20 for c in (cell for row in table.rows for cell in row[1:])
    )  # cells carry their parts


def test_matrix_is_the_reports_first_table(matrix):
    from wnbench.report.registry import load_registry

    text = markdown(
        [], Inputs(records=[]), registry=load_registry(), matrix=matrix, matrix_figure="figures/m.png"
    )
    assert text.index("## The practitioner's matrix") < text.index("## Verdicts")
    assert "![The practitioner's matrix](figures/m.png)" in text
    assert matrix_markdown(None) == []


def test_heatmap_is_drawn(matrix, tmp_path):
    from wnbench.report.plots import matrix_heatmap

    path = tmp_path / "figures" / "matrix.png"
    assert matrix_heatmap(matrix, path) and path.stat().st_size > 1000
    assert not matrix_heatmap(None, tmp_path / "none.png")


def test_an_unknown_row_is_refused():
    with pytest.raises(ValueError, match="matrix.rows"):
        MatrixSpec(rows=("transformers",), columns=COLUMNS)


def test_write_report_puts_the_matrix_in_verdicts_json_and_draws_its_figure(matrix, tmp_path, monkeypatch):
    import json

    from wnbench.report import render

    monkeypatch.setattr(render, "build_matrix", lambda inputs, registry: matrix)
    paths = render.write_report([], Inputs(records=[]), tmp_path)
    payload = json.loads(paths["json"].read_text())
    rows = {r["row"]: r for r in payload["matrix"]["rows"]}
    assert rows["on-policy"]["entries"]["weight"]["best"] and len(rows["on-policy"]["tasks"]) == 7
    assert rows["on-policy"]["entries"]["layer"]["indistinguishable_from_best"]
    assert (tmp_path / "figures" / "matrix.png").is_file()
    text = paths["markdown"].read_text()
    assert "](figures/matrix.png)" in text and text.index("practitioner's matrix") < text.index("## Verdicts")


def test_the_spec_comes_from_the_registry_and_a_v2_registry_has_no_matrix():
    from wnbench.report.matrix import matrix_spec
    from wnbench.report.registry import REGISTRY_FILE, load_registry

    spec = matrix_spec(load_registry(REGISTRY_FILE))
    assert spec.rows[0] == "on-policy" and "diffusion" in spec.rows and spec.columns[0] == "none"
    assert spec.cell_width == 40 and spec.margin == pytest.approx(0.07) and spec.min_runs == 3
    assert matrix_spec(load_registry(REGISTRY_FILE.with_name("registry_v2.yaml"))) is None


def test_a_crossq_cell_without_a_no_norm_arm_is_measured_against_sac_without_a_norm():
    """CrossQ run only in its own design (batch renorm; + WN) enters the off-policy row against SAC's no-norm runs
    of the same task and budget, on SAC's anchor; a CrossQ cell with no SAC cell beside it is still left out."""
    tasks = ("Pendulum-v1", "HalfCheetah-v5")
    levels = {("sac", "none"): 0.5, ("sac", "weight"): 0.7, ("crossq", "batch_renorm"): 0.95,
              ("crossq", "weight+batch_renorm"): 0.85}  # fmt: skip
    records = []
    for task in tasks:
        for (algo, norm), level in levels.items():
            for seed in range(5):
                r = _record(task, algo, norm, seed, level)
                if algo == "crossq":  # on SAC's scale: the value SAC's anchor puts at `level`
                    sac, own = rl_anchor(task, "sac"), rl_anchor(task, "crossq")
                    raw = sac.low + (level + 0.03 * ((seed + len(task) + 3 * len(norm)) % 5 - 2)) * (
                        sac.high - sac.low
                    )
                    r["metrics"]["final_return"] = raw
                    assert own is not None
                records.append(r)
    lonely = [_record("CartPole-v1", "crossq", "batch_renorm", s, 0.9) for s in range(5)]
    spec = MatrixSpec(rows=("off-policy",), columns=("none", "weight", "batch_renorm", "weight+batch_renorm"),
                      cell_width=40, margin=0.07, min_runs=3)  # fmt: skip
    matrix = build_matrix(Inputs(records=records + lonely), LR_ONLY, spec)
    row = matrix.rows[0]
    assert set(row.tasks) == set(tasks)
    assert row.entries["weight"].median == pytest.approx(0.2, abs=1e-6)
    assert row.entries["batch_renorm"].median == pytest.approx(0.45, abs=1e-6)
    assert row.entries["weight+batch_renorm"].median == pytest.approx(0.35, abs=1e-6)
    assert row.entries["batch_renorm"].best
    assert any("CartPole-v1" in line for line in row.left_out)
    assert "against SAC without a norm" in " ".join(matrix.notes())


def test_score_cell_takes_the_anchor_it_is_given_over_its_records_own():
    """A borrowed baseline's anchor is passed explicitly, not read off whichever record comes first."""
    from wnbench.report.anchors import Anchor
    from wnbench.report.cells import score_cell

    by_norm = {"batch_renorm": [_record("Pendulum-v1", "crossq", "batch_renorm", s, 0.9) for s in range(3)],
               "none": [_record("Pendulum-v1", "sac", "none", s, 0.5) for s in range(3)]}  # fmt: skip
    own = score_cell(by_norm)
    given = score_cell(by_norm, anchor=Anchor(0.0, 1.0, "test: identity"))
    assert own.anchor.source != "test: identity" and given.anchor.source == "test: identity"
    np.testing.assert_allclose(given.normalized["none"], given.raw["none"])
    assert own.anchor == rl_anchor("Pendulum-v1", "crossq")
