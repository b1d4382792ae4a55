"""Published records: a suite's finished records compressed into one file, and unpacked into a resumable OUT."""

from __future__ import annotations

import gzip
import json

import pytest
from conftest import toy_suite

from wnbench.errors import UserError
from wnbench.suite.engine import run_suite
from wnbench.suite.published import export_published, import_published
from wnbench.suite.spec import load_suite
from wnbench.suite.store import iter_records
from wnbench.tracking import TrackingOptions

NO_WANDB = TrackingOptions(mode="disabled")

SUITE = toy_suite("toypub", claims="[C1]", norms="[none, weight]")


def test_publish_then_unpack_gives_back_every_record_and_resume_has_nothing_to_do(tmp_path):
    path = tmp_path / "toypub.yaml"
    path.write_text(SUITE)
    out = tmp_path / "out"
    run_suite(load_suite(path), out, workers=2, tracking=NO_WANDB, rich=False, summary=False)
    original = {r["run_id"]: r for r in iter_records(out)}
    assert len(original) == 4
    records, plan, count = export_published(out, tmp_path / "published")
    assert count == 4 and records.name == "toypub.jsonl.gz" and plan.name == "toypub.plan.json"
    first = records.read_bytes()
    export_published(out, tmp_path / "published")  # same records, same bytes (no gzip timestamp)
    assert records.read_bytes() == first
    assert len(gzip.decompress(first).decode().splitlines()) == 4
    fresh = tmp_path / "fresh"
    assert import_published(records, fresh) == 4
    unpacked = {r["run_id"]: r for r in iter_records(fresh)}
    assert unpacked.keys() == original.keys()
    for run_id, record in unpacked.items():  # everything but long per-update curves comes back as it was
        assert {k: v for k, v in record.items() if k != "curves"} == {
            k: v for k, v in original[run_id].items() if k != "curves"
        }
        for name, curve in record["curves"].items():
            full = original[run_id]["curves"][name]
            assert curve["step"][-1] == full["step"][-1] and len(curve["step"]) == min(len(full["step"]), 48)
    assert (fresh / "suite.json").is_file()
    again = run_suite(load_suite(path), fresh, workers=2, tracking=NO_WANDB, rich=False, summary=False)
    assert again.records == [] and again.skipped == 4  # resume: every run already has its record


def test_published_records_thin_per_update_curves_and_keep_evaluation_curves_whole():
    from wnbench.suite.published import PUBLISHED_CURVE_POINTS, _thin_curves

    steps = list(range(0, 1000, 2))
    record = {
        "curves": {
            "train/loss": {"step": steps, "value": steps},
            "eval/mean_return": {"step": steps, "value": steps},
        }
    }
    thin = _thin_curves(record)["curves"]
    assert thin["eval/mean_return"]["step"] == steps
    kept = thin["train/loss"]["step"]
    assert len(kept) == PUBLISHED_CURVE_POINTS and kept[0] == 0 and kept[-1] == steps[-1]
    assert thin["train/loss"]["value"] == kept


def test_records_whose_config_changed_since_are_dropped_from_the_published_file(tmp_path):
    """A zoo value edited after a publish gives its runs new ids: the next publish keeps only the runs the suite
    plans now, so a cell never mixes records of two configurations."""
    path = tmp_path / "toypub.yaml"
    path.write_text(SUITE)
    out = tmp_path / "out"
    run_suite(load_suite(path), out, workers=1, tracking=NO_WANDB, rich=False, summary=False)
    old_ids = {r["run_id"] for r in iter_records(out)}
    export_published(out, tmp_path / "published")
    path.write_text(SUITE.replace("hidden: [8]", "hidden: [16]"))
    run_suite(load_suite(path), out, workers=1, tracking=NO_WANDB, rich=False, summary=False)
    records, _, count = export_published(out, tmp_path / "published")
    published = {
        json.loads(line)["run_id"] for line in gzip.decompress(records.read_bytes()).decode().splitlines()
    }
    assert (
        count == 4 and published == {run.run_id for run in load_suite(path).runs} and not published & old_ids
    )


def test_the_report_reads_a_published_folder_and_compares_runs_with_it(tmp_path):
    """``wnbench report results/published`` reads the .jsonl.gz records as a run folder would (a damaged archive is
    an error naming it, never a report from part of it), and ``--reference`` sets a user's runs beside them cell by
    cell."""
    import subprocess
    import sys

    from wnbench.report import load_inputs

    path = tmp_path / "toypub.yaml"
    path.write_text(SUITE)
    out = tmp_path / "out"
    run_suite(load_suite(path), out, workers=2, tracking=NO_WANDB, rich=False, summary=False)
    records, _, _ = export_published(out, tmp_path / "published")
    from_folder = load_inputs([out])
    from_published = load_inputs([tmp_path / "published"])
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("_dir", "curves")} for r in rs]  # noqa: E731
    assert strip(from_published.records) == strip(from_folder.records) and len(from_published.records) == 4
    assert [m.suite for m in from_published.manifests] == ["toypub"]

    report = tmp_path / "report"
    cmd = [sys.executable, "-m", "wnbench.cli", "report", str(out), "--reference", str(tmp_path / "published"),
           "--out", str(report), "--reps", "100"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    text = (report / "report.md").read_text()
    assert f"## Against the reference ({tmp_path / 'published'})" in text
    rows = [line for line in text.splitlines() if line.startswith("| toypub: regression/mlp |")]
    assert {row.split(" | ")[1] for row in rows} == {"none", "weight"}
    assert all(row.rstrip(" |").endswith("0.50") for row in rows)  # the same runs on both sides: ties
    lines = gzip.decompress(records.read_bytes()).decode().splitlines()
    records.write_bytes(gzip.compress(("\n".join(lines[:3] + ['{"run_id": "half-writ']) + "\n").encode()))
    with pytest.raises(UserError) as damaged:
        load_inputs([tmp_path / "published"])
    assert f"{records}: damaged published archive: line 4 is not JSON" in damaged.value.render()


def test_the_committed_verdicts_are_what_the_committed_records_give():
    """docs/results/verdicts.json (make publish-report) must be what results/published gives today: a session that
    publishes records or changes the statistics regenerates it, or this fails. Only the generation time may differ."""
    from pathlib import Path

    from wnbench.report import analyze, load_inputs
    from wnbench.report.registry import load_registry

    root = Path(__file__).resolve().parents[1]
    committed = json.loads((root / "docs/results/verdicts.json").read_text())
    registry = load_registry()
    inputs = load_inputs([root / "results/published"])
    results = analyze(inputs, reps=registry.defaults.reps, registry=registry)
    fresh = json.loads(json.dumps([r.as_dict() for r in results]))
    assert committed["records"] == len(inputs.records)
    assert committed["registry"] == json.loads(json.dumps(registry.model_dump(mode="json")))
    for theirs, ours in zip(committed["claims"], fresh, strict=True):
        assert theirs == ours, (
            f"{ours['claim']}: docs/results/verdicts.json is stale; run make publish-report"
        )
    from wnbench.report.render import compute_payload

    assert committed["compute"] == json.loads(json.dumps(compute_payload(inputs))), "stale CPU-hours"


def test_registry_v2_reproduces_the_committed_v2_verdicts():
    """docs/results/verdicts_v2.json (written beside the v3 verdicts by make publish-report) is what the v2 rules
    (``--registry v2``) give on results/published: the v2 verdicts stay reproducible under the v3 default."""
    from pathlib import Path

    from wnbench.report import analyze, load_inputs
    from wnbench.report.registry import load_registry

    root = Path(__file__).resolve().parents[1]
    committed = json.loads((root / "docs/results/verdicts_v2.json").read_text())
    registry = load_registry("v2")
    assert committed["registry"]["version"] == 2
    inputs = load_inputs([root / "results/published"])
    fresh = json.loads(
        json.dumps([r.as_dict() for r in analyze(inputs, reps=registry.defaults.reps, registry=registry)])
    )
    assert committed["registry"] == json.loads(json.dumps(registry.model_dump(mode="json")))
    for theirs, ours in zip(committed["claims"], fresh, strict=True):
        assert theirs == ours, (
            f"{ours['claim']}: docs/results/verdicts_v2.json is stale; run make publish-report"
        )


def test_the_readme_verdict_table_is_what_the_committed_verdicts_give():
    """The README's table between its verdicts markers is rendered from docs/results/verdicts.json (make
    publish-report); a hand edit or a stale table fails here. Every other generated block, in the README and in
    docs/*.md: tests/test_readme_generated.py."""
    from pathlib import Path

    from wnbench.report.readme import current_block, default_sources, render_block

    root = Path(__file__).resolve().parents[1]
    block = current_block((root / "README.md").read_text(encoding="utf-8"))
    fresh = render_block("verdicts", default_sources(root / "docs/results", root))
    assert block == fresh, "README's verdict table is stale; run make publish-report"


def _payload(per_cell, direction=(2, 1, 0), verdict="supported"):
    head = {"name": "WN > BN", "x": ["weight", "weight_ddi"], "y": ["batch"], "verdict": verdict,
            "probability": 0.71234, "ci_low": 0.6, "ci_high": 0.8, "ci_confidence": 0.975, "holm_rank": [1, 2],
            "direction_counts": list(direction), "per_cell": per_cell}  # fmt: skip
    return {
        "records": 12,
        "inputs": ["results/published"],
        "registry": {"arm_sets": {"WN": ["weight", "weight_ddi"], "BN": ["batch"]}},
        "compute": {"rl": {"cpu_hours": 1.25, "runs": 12, "missing": 3}},
        "claims": [
            {
                "claim": "C1",
                "title": "WN beats BN",
                "verdict": verdict,
                "headline": head,
                "peer_headline": {**head, "verdict": "inconclusive", "probability": 0.55},
            }
        ],  # fmt: skip
    }


def test_the_readme_table_gives_verdict_interval_effect_size_and_direction_count():
    from wnbench.report.readme import readme_block

    cells = [
        {"cell": "CartPole-v1/ppo", "metric": "final_return", "median_difference": [12.5, -3.25, 40.0],
         "seeds": 5, "higher_is_better": True},
        {"cell": "Pendulum-v1/sac", "metric": "final_return", "median_difference": [-150.0, -300.0, 2.0],
         "seeds": 5, "higher_is_better": True},
        {"cell": "digits/gan", "metric": "fid_classifier", "median_difference": [-4.0, -9.0, 1.0], "seeds": 3,
         "higher_is_better": False},
    ]  # fmt: skip
    row = next(line for line in readme_block(_payload(cells)).splitlines() if line.startswith("| **C1**"))
    assert "**supported**<br>cells at peer level only: inconclusive, P(X > Y) = 0.550" in row
    assert "WN > BN: P(X > Y) = 0.712 [0.600, 0.800] (97.5%, Holm 1/2)" in row
    assert "CartPole-v1/ppo (final_return) 12.5 [-3.25, 40]" in row
    assert "Pendulum-v1/sac (final_return) -150 [-300, 2]" in row
    assert "digits/gan (fid_classifier↓) -4 [-9, 1]" in row  # lower is better: marked
    assert "3 cells (3 tasks) × 3–5 seeds" in row
    assert "WN ahead in 2 of 3 cells, BN in 1" in row
    block = readme_block(_payload(cells[:2]))
    assert "final_return: CartPole-v1/ppo 12.5" in block  # one metric: named once
    assert "rl: 1.2 CPU-h, 12 runs, 3 planned runs without a record yet" in block
    # Tasks are counted by the cells' task (an env id may hold a slash), not by the cell name's first part.
    masked = [
        {**cells[0], "cell": "wnbench/CartPoleNoVel-v1/recurrentppo", "task": "wnbench/CartPoleNoVel-v1"},
        {**cells[0], "cell": "wnbench/PendulumNoVel-v1/recurrentppo", "task": "wnbench/PendulumNoVel-v1"},
        {**cells[0], "cell": "wnbench/PendulumNoVel-v1/ppo", "task": "wnbench/PendulumNoVel-v1"},
    ]
    assert "3 cells (2 tasks) × 5 seeds" in readme_block(_payload(masked))


def test_report_readme_without_markers_is_refused_before_any_work(tmp_path):
    import subprocess
    import sys

    readme = tmp_path / "README.md"
    readme.write_text("# a readme without the generated table\n")
    proc = subprocess.run(
        [sys.executable, "-m", "wnbench.cli", "report", str(tmp_path / "nothing"), "--out", str(tmp_path / "r"),
         "--readme", str(readme)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "no generated verdict table" in proc.stderr and "verdicts:begin" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "r").exists()


def test_records_waiting_in_published_pending_reach_no_report(tmp_path):
    """An unfinished sweep waits in ``results/published/pending/``: neither ``wnbench report results/published``
    nor ``wnbench report results`` (its parent) reads it, so half a sweep never makes a verdict; named directly,
    it reads like any published folder."""
    from wnbench.report import load_inputs

    results = tmp_path / "results"
    for name, dest in (("toypub", results / "published"), ("toypend", results / "published" / "pending")):
        path = tmp_path / f"{name}.yaml"
        path.write_text(SUITE.replace("name: toypub", f"name: {name}"))
        run_suite(load_suite(path), tmp_path / name, workers=2, tracking=NO_WANDB, rich=False, summary=False)
        export_published(tmp_path / name, dest)
    for folder in (results, results / "published"):
        assert {m.suite for m in load_inputs([folder]).manifests} == {"toypub"}
    assert {m.suite for m in load_inputs([results / "published" / "pending"]).manifests} == {"toypend"}
    (results / "published" / "toypub.jsonl.gz").unlink()  # even when published/ itself holds nothing yet
    with pytest.raises(UserError):
        load_inputs([results / "published"])
