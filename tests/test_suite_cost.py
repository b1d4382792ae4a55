"""The dry run's CPU-hours table: spent from the records, still to run from each arm's (else cell's) mean."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from conftest import run_cli

from wnbench.suite.cost import cost_lines, plan_cost


def _run(task: str, norm: str, seed: int, lr: float = 1e-3, steps: int = 1000):
    return SimpleNamespace(task=task, algo="ppo", norm_label=norm, seed=seed, params={"lr": lr},
                           budget={"steps": steps, "time_limit_s": 60})  # fmt: skip


def _record(cpu_s: float | None, status: str = "finished") -> dict:
    return {"status": status, "timings": {} if cpu_s is None else {"cpu_s": cpu_s}}


def test_each_pending_run_is_estimated_from_its_arm_else_its_cell():
    rows = [
        (_run("A", "none", 0), _record(100.0)),
        (_run("A", "none", 1), _record(300.0)),
        (_run("A", "none", 2), None),  # its arm's mean: 200
        (_run("A", "batch", 0), _record(600.0)),
        (_run("A", "batch", 1), _record(50.0, "failed")),  # spent, but not done: to run, at batch's mean 600
        (_run("A", "weight", 0), None),  # no weight run yet: the cell's mean, (100 + 300 + 600) / 3
        (_run("A", "none", 0, lr=3e-3), None),  # another learning rate is another arm: the cell's mean too
        (_run("B", "none", 0), None),  # nothing finished in B: no estimate
    ]
    a, b = plan_cost(rows)
    assert (a.name, a.done, a.to_run, a.unestimated) == ("A/ppo [steps=1000]", 3, 4, 0)
    assert a.spent_h * 3600 == pytest.approx(100 + 300 + 600 + 50)
    assert a.estimate_h * 3600 == pytest.approx(200 + 600 + 1000 / 3 + 1000 / 3)
    assert (b.done, b.to_run, b.unestimated, b.estimate_h) == (0, 1, 1, 0.0)
    total = cost_lines([a, b])[-1]
    assert "0.29 CPU-h spent" in total and "1 runs in cells with no finished run" in total


def test_a_record_without_cpu_time_is_done_but_adds_no_time():
    (cell,) = plan_cost([(_run("A", "none", 0), _record(None)), (_run("A", "none", 1), None)])
    assert (cell.done, cell.spent_h, cell.to_run, cell.unestimated) == (1, 0.0, 1, 1)


def test_the_dry_run_prints_the_table(monkeypatch, capsys, suite_file, tmp_path):
    code, out, _ = run_cli(
        monkeypatch, capsys, "run", str(suite_file()), "--dry-run", "--out", str(tmp_path / "o")
    )
    assert code in (0, None)
    assert "CPU-hours per cell" in out
    assert (
        out.rstrip()
        .splitlines()[-1]
        .startswith("total: 0.00 CPU-h spent, about 0.00 CPU-h to run, and 4 runs")
    )
