"""wnbench wandb-export: records become offline W&B runs that read back (``wandb leet inspect``) with the live run's
config, the record's final metrics, each curve on its own steps, and a run id that is the same on every export."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from wnbench.errors import UserError
from wnbench.suite.store import write_record
from wnbench.tracking.export import (
    MANIFEST,
    REFERENCE_TAG,
    STEP_PREFIX,
    export_records,
    load_records,
    run_config,
    run_rows,
)

WANDB = Path(sys.executable).with_name("wandb")


def _record(run_id: str, norm: str, seed: int, value: float) -> dict:
    return {
        "schema": 1,
        "run_id": run_id,
        "suite": "rl",
        "claims": ["C1", "C6"],
        "label": f"rl/CartPole-v1/ppo/{norm}/seed{seed}",
        "status": "finished",
        "config": {
            "kind": "rl",
            "task": "CartPole-v1",
            "algo": "ppo",
            "norm": norm,
            "norm_spec": {"name": norm},
            "seed": seed,
            "params": {"lr": 0.001, "net": {"width": 64}},
            "budget": {"steps": 100},
            "resolved": None,
        },
        "metrics": {"final_return": value, "auc_normalized": value / 2},
        # two step grids: eval every 10 steps from 0, the loss at 5, 15 (and a None W&B cannot plot)
        "curves": {
            "eval/mean_return": {"step": [0, 10, 20], "value": [1.0, 2.0, value]},
            "train/loss": {"step": [5, 15, 25], "value": [0.5, 0.25, None]},
        },
        "details": {},
        "error": None,
        "diverged_at_step": None,
        "wall_time_s": 3.0,
    }


RECORDS = [_record("aaaa0001", "none", 0, 100.0), _record("aaaa0002", "weight", 0, 200.0)]


def _inspect(run_dir: Path) -> dict:
    proc = subprocess.run(
        [str(WANDB), "leet", "inspect", "--summary", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wnbench.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.fixture()
def run_folder(tmp_path: Path) -> Path:
    out = tmp_path / "mine"
    for record in RECORDS:
        write_record(out, record)
    return out


def test_rows_keep_each_curve_on_its_own_steps():
    rows = run_rows(RECORDS[0]["curves"])
    assert [step for step, _ in rows] == [0, 5, 10, 15, 20]  # the union, increasing; 25 only had a None
    by_step = dict(rows)
    assert by_step[5] == {"train/loss": 0.5, STEP_PREFIX + "train/loss": 5}  # no eval point invented at 5
    assert by_step[10] == {"eval/mean_return": 2.0, STEP_PREFIX + "eval/mean_return": 10}


def test_exported_runs_read_back_with_config_summary_and_curves(run_folder, tmp_path):
    result = export_records(load_records(run_folder), out_dir=tmp_path / "ref", project="wnbench-test")
    assert (result.written, result.skipped) == (2, 0)
    assert set(result.run_dirs) == {"ref-aaaa0001", "ref-aaaa0002"}
    for record in RECORDS:
        run = _inspect(result.run_dirs[f"ref-{record['run_id']}"])
        assert run["run_id"] == f"ref-{record['run_id']}" and run["state"] == "finished"
        assert run["project"] == "wnbench-test"
        assert run["name"] == f"CartPole-v1/ppo/{record['config']['norm']}/s0"
        assert run["config"] == json.loads(json.dumps(run_config(record)))  # the live run's keys, nested
        assert run["config"]["params"]["net"]["width"] == 64
        assert REFERENCE_TAG in run["tags"] and "suite:rl" in run["tags"] and "status:finished" in run["tags"]
        assert f"norm:{record['config']['norm']}" in run["tags"]
        summary = run["summary"]
        assert summary["final_return"] == record["metrics"]["final_return"]
        assert summary["auc_normalized"] == record["metrics"]["auc_normalized"]
        # each curve's last point at its own last step: eval ends at 20, the loss at 15 (its 25 was None)
        assert summary["eval/mean_return"] == record["curves"]["eval/mean_return"]["value"][-1]
        assert summary[STEP_PREFIX + "eval/mean_return"] == 20
        assert summary["train/loss"] == 0.25 and summary[STEP_PREFIX + "train/loss"] == 15


def test_run_ids_are_stable_and_a_second_export_skips(run_folder, tmp_path):
    first = export_records(load_records(run_folder), out_dir=tmp_path / "a")
    other = export_records(load_records(run_folder), out_dir=tmp_path / "b")
    assert set(first.run_dirs) == set(other.run_dirs)
    again = export_records(load_records(run_folder), out_dir=tmp_path / "a")
    assert (again.written, again.skipped) == (0, 2)
    assert again.run_dirs == first.run_dirs
    assert len(list((tmp_path / "a" / "wandb").glob("offline-run-*"))) == 2


def test_a_run_an_interrupted_export_left_unlisted_is_rewritten_once(run_folder, tmp_path):
    first = export_records(load_records(run_folder), out_dir=tmp_path / "a")
    manifest = tmp_path / "a" / "wandb" / MANIFEST
    lines = manifest.read_text().splitlines()
    manifest.write_text(lines[0] + "\n")  # as if the export died before listing the second run
    again = export_records(load_records(run_folder), out_dir=tmp_path / "a")
    assert (again.written, again.skipped) == (1, 1)
    folders = list((tmp_path / "a" / "wandb").glob("offline-run-*"))
    assert len(folders) == 2 and set(again.run_dirs) == set(first.run_dirs)


def test_an_archive_exports_with_its_profile(tmp_path):
    published = tmp_path / "published"
    published.mkdir()
    lines = "".join(json.dumps(r) + "\n" for r in RECORDS[:1])
    (published / "rl.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    (published / "rl.plan.json").write_text(json.dumps({"suite": "rl", "profile": "paper"}))
    runs = load_records(published)
    assert [r.profile for r in runs] == ["paper"]
    result = export_records(runs, out_dir=tmp_path / "ref")
    assert "profile:paper" in _inspect(result.run_dirs["ref-aaaa0001"])["tags"]


def test_bad_inputs_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_records(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no run records"):
        load_records(tmp_path / "empty")


def test_cli_exports_and_exits_2_naming_bad_inputs(run_folder, tmp_path):
    proc = _cli("wandb-export", str(run_folder), "--out", str(tmp_path / "ref"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "2 runs written, 0 skipped" in proc.stdout and "wandb sync " in proc.stdout
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "rl.jsonl.gz").write_bytes(b"not gzip at all")
    for path, words in [
        (tmp_path / "nowhere", "no such file"),
        (tmp_path / "empty", "no run records"),
        (bad, "damaged published archive"),
    ]:
        if path.name == "empty":
            path.mkdir()
        proc = _cli("wandb-export", str(path), "--out", str(tmp_path / "ref2"), cwd=tmp_path)
        assert proc.returncode == 2, (path, proc.stderr)
        assert str(path) in proc.stderr and words in proc.stderr and "Traceback" not in proc.stderr


def test_mine_vs_reference_report_has_both_run_sets_per_cell(monkeypatch):
    """``wnbench report MINE --reference R --wandb``: every cell's grid holds "mine" (runs without the reference
    tag) and "reference" (runs with it), both over the cell's suites, task and algo, grouped by norm; the spec
    builds offline."""
    pytest.importorskip("wandb_workspaces")
    from wnbench.tracking.wandb_report import ClaimSection, build_report, report_spec

    monkeypatch.setenv("WANDB_MODE", "offline")
    cells = (("CartPole-v1", "ppo"), ("Pendulum-v1", "sac"))
    section = ClaimSection("C1", "t", "v", ("rl", "rl-lr"), ("eval/mean_return",), ("final_return",), cells)
    report = build_report(
        [section], project="wnbench", entity=None, title="t", description="", reference_tag=REFERENCE_TAG
    )
    grids = [b for b in report_spec(report)["spec"]["blocks"] if b["type"] == "panel-grid"]
    assert len(grids) == len(cells)
    for grid, (task, algo) in zip(grids, cells, strict=True):
        mine, reference = grid["metadata"]["runSets"]
        assert mine["name"].startswith("mine: ") and reference["name"].startswith("reference: ")
        for runset, tag_op in ((mine, "NIN"), (reference, "IN")):
            leaves = {
                (f["key"]["section"], f["key"]["name"]): (f["op"], f["value"])
                for f in runset["filters"]["filters"]
            }
            assert leaves == {
                ("run", "group"): ("IN", ["rl", "rl-lr"]),
                ("config", "task"): ("=", task),
                ("config", "algo"): ("=", algo),
                ("run", "tags"): (tag_op, [REFERENCE_TAG]),
            }
            assert runset["grouping"] == [{"section": "config", "name": "norm.value"}]
        panels = grid["metadata"]["panelBankSectionConfig"]["panels"]
        assert [p["viewType"] for p in panels] == ["Run History Line Plot", "Bar Chart"]
        assert all(p["config"]["groupBy"] == "norm.value" for p in panels)
    # without a reference the grids keep their single run set
    plain = build_report([section], project="wnbench", entity=None, title="t", description="")
    assert all(
        len(g["metadata"]["runSets"]) == 1
        for g in report_spec(plain)["spec"]["blocks"]
        if g["type"] == "panel-grid"
    )
