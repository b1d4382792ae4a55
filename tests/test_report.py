"""``wnbench report`` from fixture records: verdicts, failed/diverged/missing runs shown, bad inputs refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wnbench.errors import UserError
from wnbench.report import Inputs, analyze, build_report, load_inputs
from wnbench.report.analyses.lr_robustness import good_lr_width
from wnbench.report.anchors import rl_anchor
from wnbench.rl.scoring import EVAL_CURVE
from wnbench.suite.store import RECORD_SCHEMA, write_record

WN_SET = ("weight", "weight_ddi", "weight+meanonly")
RANDOM_CARTPOLE = rl_anchor("CartPole-v1", "ppo").low

REPS = 300  # bootstrap resamples: enough for the fixture's clear-cut answers, fast


@pytest.fixture(autouse=True)
def _registry_v2(monkeypatch):
    """These tests check the v2 rules (registry_v2.yaml: bootstrap over tasks, v2 arm sets and claims); the v3
    decider is tested in tests/test_report_v3.py."""
    from wnbench.report.registry import REGISTRY_V2_FILE

    monkeypatch.setenv("WNBENCH_REGISTRY", str(REGISTRY_V2_FILE))


#: Final return of each norm's seeds on two tasks: weight clearly beats batch; one batch run diverges, one fails.
RETURNS = {
    "CartPole-v1": {"none": [480, 490, 500, 470], "batch": [60, 80, None, 70], "weight": [495, 500, 500, 490]},
    "Pendulum-v1": {"none": [-200, -180, -220, -190], "batch": [-900, -800, -850, "failed"], "weight": [-210, -170, -190, -185]},
}  # fmt: skip


def _record(run_id: str, suite: str, claims: list[str], task: str, norm: str, seed: int, value, **params):
    status = "finished" if isinstance(value, int | float) else ("diverged" if value is None else "failed")
    steps = [0, 1000, 2000]
    final = float(value) if status == "finished" else None
    return {
        "run_id": run_id,
        "suite": suite,
        "claims": claims,
        "status": status,
        "config": {
            "kind": "rl",
            "task": task,
            "algo": "ppo",
            "norm": norm,
            "norm_spec": {"name": norm},
            "seed": seed,
            "params": {"eval_every": 1000, **params},
            "budget": {"steps": 2000},
            "resolved": None,
        },  # fmt: skip
        "metrics": {}
        if final is None
        else {"final_return": final, "steps_per_cpu_s": 1000.0 - 100 * (norm == "batch")},
        "curves": {} if final is None else {EVAL_CURVE: {"step": steps, "value": [0.0, final / 2, final]}},
        "error": "RuntimeError: worker crashed (fixture)" if status == "failed" else None,
        "diverged_at_step": 1500 if status == "diverged" else None,
        "timings": {"run_cpu_s": 1.0},
        "versions": {"wnbench": "0.1.0"},
        "schema": RECORD_SCHEMA,
    }


def write_fixture(out: Path, planned_extra: int = 2) -> list[str]:
    ids = []
    for task, by_norm in RETURNS.items():
        for norm, values in by_norm.items():
            for seed, value in enumerate(values):
                run_id = f"{task[:4]}{norm[:4]}{seed}".lower()
                write_record(out, _record(run_id, "rl", ["C1", "C6"], task, norm, seed, value))
                ids.append(run_id)
    manifest = {"suite": "rl", "profile": "default", "claims": ["C1", "C6"], "run_ids": ids + [f"lost{i}" for i in range(planned_extra)]}  # fmt: skip
    (out / "suite.json").write_text(json.dumps(manifest))
    return ids


def test_report_from_fixture_counts_failed_diverged_and_missing(tmp_path):
    write_fixture(tmp_path / "rl")
    results, paths = build_report([tmp_path / "rl"], tmp_path / "report", reps=REPS)
    c1 = {r.claim: r for r in results}["C1"]
    assert c1.verdict == "supported"
    assert c1.headline.estimate.low > 0.5 and c1.headline.x == WN_SET and c1.headline.y[0] == "batch"
    # the failed batch run is not scored; the diverged one is (as worst): 4 + 3 batch runs, every one used
    assert len(c1.headline.cells) == 2 and c1.headline.runs == (8, 7)
    assert [(c.runs_x, c.runs_y) for c in c1.headline.cells] == [(4, 4), (4, 3)]
    assert c1.headline.direction_text == "X in 2 of 2 cells, Y in 0"
    assert c1.status_counts["batch"] == {"finished": 6, "diverged": 1, "failed": 1}
    assert c1.missing == {"rl": 2}
    verdicts = json.loads(paths["json"].read_text())
    claims = {c["claim"]: c for c in verdicts["claims"]}
    assert claims["C1"]["verdict"] == "supported" and claims["C1"]["missing"] == {"rl": 2}
    assert claims["C7"]["verdict"] == "no data"
    md = paths["markdown"].read_text()
    assert "22 / 1 / 1 / 2" in md.replace(
        "\\", ""
    )  # finished / diverged / failed / missing in the verdict table
    assert "worker crashed (fixture)" in md and "batch: diverged 1 failed 1 finished 6" in md
    assert "## Pre-registration" in md and "batch[bn_mode=running]" in md and "Holm" in md
    assert (tmp_path / "report" / "figures" / "c1_curves.png").stat().st_size > 10_000
    html = paths["html"].read_text()
    assert "data:image/png;base64," in html and 'src="figures/' not in html  # self-contained


def test_diverged_run_scores_as_the_worst_of_its_cell(tmp_path):
    write_fixture(tmp_path / "rl")
    results, _ = build_report([tmp_path / "rl"], tmp_path / "report", reps=REPS)
    scores = {r.claim: r for r in results}["C1"].cell_scores["CartPole-v1/ppo"]
    # batch seeds 0,1,2(diverged),3: the diverged one scores as the cell's worst return (60), fixed anchors
    assert (
        scores["batch"][2]
        == scores["batch"].min()
        == pytest.approx((60 - RANDOM_CARTPOLE) / (500 - RANDOM_CARTPOLE))
    )


def test_two_seeds_give_insufficient_data(tmp_path):
    out = tmp_path / "rl"
    for task in ("A-v0", "B-v0"):
        for norm, values in {"weight": [1.0, 2.0], "batch": [0.0, 0.5]}.items():
            for seed, value in enumerate(values):
                write_record(out, _record(f"{task}{norm}{seed}", "rl", ["C1"], task, norm, seed, value))
    results, _ = build_report([out], tmp_path / "report", reps=REPS)
    assert {r.claim: r for r in results}["C1"].verdict == "insufficient data"


def test_lr_width_counts_the_widest_run_of_good_adjacent_rates():
    rates = [1e-4, 1e-3, 1e-2, 1e-1]
    assert good_lr_width(rates, [0.95, 1.0, 0.95, 0.2], threshold=0.9) == pytest.approx(3.0)
    assert good_lr_width(rates, [0.95, 0.5, 0.95, 0.95], threshold=0.9) == pytest.approx(2.0)
    assert good_lr_width(rates, [0.0, 0.0, 1.0, 0.0], threshold=0.9) == pytest.approx(1.0)
    assert good_lr_width(rates, [0.95, float("nan"), 0.95, 0.95], threshold=0.9) == pytest.approx(2.0)


def test_c5_width_verdict_from_a_sweep(tmp_path):
    """WN good at every rate, BN only at one: WN's range is wider on every seed and cell."""
    out = tmp_path / "lr"
    rates = [1e-4, 1e-3, 1e-2]
    for task in ("A-v0", "B-v0"):
        for norm in ("weight", "batch"):
            for lr in rates:
                for seed in range(3):
                    value = 100.0 if norm == "weight" or lr == 1e-3 else (None if lr == 1e-2 else 10.0)
                    run_id = f"{task}{norm}{lr}{seed}"
                    write_record(
                        out, _record(run_id, "rl-lr", ["C5"], task, norm, seed, value, learning_rate=lr)
                    )
    results, paths = build_report([out], tmp_path / "report", reps=REPS)
    c5 = {r.claim: r for r in results}["C5"]
    assert c5.headline.counts == (2, 0, 0) and c5.verdict == "supported"
    assert np.all(c5.cell_scores["A-v0/ppo"]["weight"] == pytest.approx(3.0))  # 3 good rates, 1 decade apart
    assert np.all(c5.cell_scores["A-v0/ppo"]["batch"] == pytest.approx(1.0))
    assert (tmp_path / "report" / "figures" / "c5_lr.png").is_file()
    assert "diverged runs" in paths["markdown"].read_text()


def test_c5_a_norm_that_fails_at_every_rate_has_no_good_range(tmp_path):
    """Relative to its own best alone, a norm flat at a low score would be "good" at every rate and look the most
    robust; the floor (half the cell's best median above the lower anchor) gives it width 0. WN here works at two
    adjacent rates and fails at the third; BN sits at 20% of the reference at all three."""
    from wnbench.report.analyses.lr_robustness import own_best_threshold

    assert own_best_threshold(0.2, 0.1, floor=0.5) == float("inf")
    assert own_best_threshold(0.6, 0.1, floor=0.5) == pytest.approx(0.54)
    assert own_best_threshold(0.52, 0.1, floor=0.5) == pytest.approx(0.5)  # the floor, not 0.468
    out = tmp_path / "lr"
    rates = [1e-4, 1e-3, 1e-2]
    for task in ("CartPole-v1", "Acrobot-v1"):
        low, high = {"CartPole-v1": (23.68, 500.0), "Acrobot-v1": (-500.0, -76.64)}[task]  # random, zoo
        for norm in ("weight", "batch"):
            for lr in rates:
                for seed in range(3):
                    frac = 0.2 if norm == "batch" else (1.0 if lr < 1e-2 else 0.0)
                    write_record(out, _record(f"{task}{norm}{lr}{seed}", "rl-lr", ["C5"], task, norm, seed,
                                              low + frac * (high - low), learning_rate=lr))  # fmt: skip
    results, _ = build_report([out], tmp_path / "report", reps=REPS)
    c5 = {r.claim: r for r in results}["C5"]
    assert np.all(c5.cell_scores["CartPole-v1/ppo"]["batch"] == 0.0)
    assert np.all(c5.cell_scores["CartPole-v1/ppo"]["weight"] == pytest.approx(2.0))  # 2 good rates = 2 steps
    assert c5.headline.counts == (2, 0, 0)


def test_records_of_another_schema_are_skipped_with_a_line(tmp_path):
    write_fixture(tmp_path / "rl")
    old = _record("old0", "rl", ["C1"], "CartPole-v1", "weight", 9, 1.0)
    old["schema"] = RECORD_SCHEMA + 1
    write_record(tmp_path / "rl", old)
    inputs = load_inputs([tmp_path / "rl"])
    assert "old0" not in inputs.record_ids
    assert any(f"record schema {RECORD_SCHEMA + 1}" in line and "old0" in line for line in inputs.skipped)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wnbench.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def test_cli_exits_2_on_a_directory_without_records(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = _cli("report", str(tmp_path / "empty"), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "no usable run records or benchmark results" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_exits_2_when_every_record_is_of_another_version(tmp_path):
    old = _record("old0", "rl", ["C1"], "CartPole-v1", "weight", 0, 1.0)
    old["schema"] = 99
    write_record(tmp_path / "rl", old)
    proc = _cli("report", str(tmp_path / "rl"), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "record schema 99, this wnbench reads schema" in proc.stderr


def test_cli_writes_the_report_and_an_offline_wandb_report(tmp_path):
    write_fixture(tmp_path / "rl")
    (tmp_path / "rl" / "wandb").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "wnbench.cli", "report", str(tmp_path / "rl"), "--out", str(tmp_path / "r"), "--wandb", "--reps", "300"],
        capture_output=True, text=True, cwd=tmp_path, env={**__import__("os").environ, "WANDB_MODE": "offline"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "supported" in proc.stdout
    assert "wandb sync" in proc.stdout and str(tmp_path / "rl" / "wandb") in proc.stdout
    assert (tmp_path / "r" / "report.html").is_file()


def test_records_outside_the_suites_last_plan_are_not_reported(tmp_path):
    """After a config edit the run ids change; the old records stay on disk but must not mix into verdicts."""
    write_fixture(tmp_path / "rl")
    write_record(tmp_path / "rl", _record("stale0", "rl", ["C1"], "CartPole-v1", "batch", 7, 500.0))
    inputs = load_inputs([tmp_path / "rl"])
    assert "stale0" not in inputs.record_ids and len(inputs.records) == 24
    assert any("1 record(s) not in the suite's last plan" in line for line in inputs.skipped)


def test_benchmark_files_give_c3_c4_c8(tmp_path):
    """C4 and C8 verdicts from real (small) benchmark measurements; the overhead table for C3."""
    from wnbench.bench.ddi import measure_ddi
    from wnbench.bench.noise import measure_noise
    from wnbench.bench.output import write_rows

    bench = tmp_path / "bench"
    write_rows(
        bench / "noise.json",
        measure_noise(["none", "batch", "weight"], [2, 16], companions=8),
        {"companions": 8},
    )
    write_rows(bench / "ddi.json", measure_ddi(seeds=range(1)), {"init_tolerance": 1e-3})
    row = {"model": "mlp", "train_step_ratio_q25": 1.0, "train_step_ratio_q75": 1.2, "act_step_ratio_q25": 1.0,
           "act_step_ratio_q75": 1.2, "peak_memory_ratio": 1.1}  # fmt: skip
    overhead = [{**row, "norm": n, "train_step_ratio": t, "act_step_ratio": a} for n, t, a in
                [("none", 1.0, 1.0), ("batch", 1.25, 1.7), ("weight", 1.1, 1.05)]]  # fmt: skip
    (bench / "overhead.json").write_text(json.dumps({"meta": {"repeats": 5}, "rows": overhead}))
    results, paths = build_report([bench], tmp_path / "report", reps=REPS)
    by = {r.claim: r for r in results}
    assert by["C4"].verdict == "supported" and "B=2" in by["C4"].headline_text
    assert by["C8"].verdict == "supported"
    assert by["C1"].verdict == "no data"
    md = paths["markdown"].read_text()
    assert "mlp weight 1.10× vs batch 1.25×" in md and "figures/c4_noise.png" in md
    assert by["C3"].verdict == "inconclusive"  # the IQRs overlap: the paired benchmark cannot tell them apart
    for r in overhead:
        r.update({"weight": {"train_step_ratio_q25": 1.05, "train_step_ratio_q75": 1.15},
                  "batch": {"train_step_ratio_q25": 1.21, "train_step_ratio_q75": 1.3}}.get(r["norm"], {}))  # fmt: skip
    (bench / "overhead.json").write_text(json.dumps({"meta": {"repeats": 5}, "rows": overhead}))
    results, _ = build_report([bench], tmp_path / "report", reps=REPS)
    assert {r.claim: r for r in results}["C3"].verdict == "supported"


def test_every_table_row_has_one_cell_per_column(tmp_path):
    """Cells with different norm sets (RL with batch_renorm, another without) must not shift columns."""
    write_fixture(tmp_path / "rl")
    extra = _record("cp-renorm", "rl", ["C1"], "CartPole-v1", "batch_renorm", 0, 300.0)
    write_record(tmp_path / "rl", extra)
    manifest = json.loads((tmp_path / "rl" / "suite.json").read_text())
    manifest["run_ids"].append("cp-renorm")
    (tmp_path / "rl" / "suite.json").write_text(json.dumps(manifest))
    results, _ = build_report([tmp_path / "rl"], tmp_path / "report", reps=REPS)
    tables = [t for r in results for t in r.tables]
    assert tables
    for table in tables:
        assert all(len(row) == len(table.header) for row in table.rows), table.title


def _records(cells: dict, suite: str = "rl", claims=("C1",), **extra) -> list[dict]:
    """``{task: {norm: [values]}}`` -> records (in memory), seeds 0..n-1."""
    out = []
    for task, by_norm in cells.items():
        for norm, values in by_norm.items():
            for seed, value in enumerate(values):
                r = _record(f"{task}-{norm}-{seed}", suite, list(claims), task, norm, seed, value, **extra)
                out.append(r)
    return out


def _c(results, claim="C1"):
    return {r.claim: r for r in results}[claim]


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


def test_adding_a_claim_is_adding_a_registry_entry(tmp_path):
    from wnbench.report.registry import REGISTRY_V2_FILE, load_registry

    text = REGISTRY_V2_FILE.read_text() + (
        "  - id: C9\n    statement: LN beats BN in RL\n    analysis: comparison\n    suites: [rl]\n"
        "    metric: final return\n    hypotheses:\n      - {name: layer > BN, x: [layer], y: BN, family: extra}\n"
    )
    (tmp_path / "registry.yaml").write_text(text)
    registry = load_registry(tmp_path / "registry.yaml")
    cells = {
        t: {"layer": [10.0, 11, 12], "batch": [0.0, 1, 2], "weight": [5.0, 6, 7]} for t in ("A-v0", "B-v0")
    }
    results = analyze(Inputs(records=_records(cells)), reps=REPS, registry=registry)
    c9 = _c(results, "C9")
    assert c9.verdict == "supported" and c9.headline.y == ("batch", "batch[bn_mode=running]", "batch_renorm")
    assert c9.headline.holm.family_size == 1  # its own family: C1's headline family is not enlarged


def test_a_new_claim_is_one_registry_entry_from_suite_file_to_report_and_wandb(tmp_path, monkeypatch):
    """C9 and C10 in a registry named by WNBENCH_REGISTRY: a suite naming C9 is accepted (refused under the
    built-in registry), and C9 is analyzed, rendered, drawn and given a W&B section as its entry says; C10, with
    no input, prints its entry's how-to-measure line. No code names either id."""
    from wnbench.report import wandb_sections
    from wnbench.report.registry import REGISTRY_V2_FILE
    from wnbench.report.render import write_report
    from wnbench.suite import load_suite

    entries = (
        "  - id: C9\n    statement: LN beats BN in RL\n    analysis: comparison\n    suites: [rl9]\n"
        "    metric: final return\n    figures: [curves, iqm]\n    how_to_measure: Run suites/rl9.yaml.\n"
        "    wandb: {curves: [eval/mean_return], finals: [final_return]}\n"
        "    hypotheses:\n      - {name: layer > BN, x: [layer], y: BN, family: extra}\n"
        "  - id: C10\n    statement: GN beats BN in RL\n    analysis: comparison\n    suites: [rl10]\n"
        "    metric: final return\n    how_to_measure: Run suites/rl10.yaml (not yet written).\n"
        "    hypotheses:\n      - {name: group > BN, x: [group], y: BN, family: extra}\n"
    )
    (tmp_path / "registry.yaml").write_text(REGISTRY_V2_FILE.read_text() + entries)
    (tmp_path / "rl9.yaml").write_text(
        "name: rl9\nclaims: [C9]\nprofiles:\n  default: {kind: toy, tasks: [regression], algos: [mlp], "
        "norms: [layer, batch], seeds: 1, budget: {steps: 10}}\n"
    )
    monkeypatch.delenv("WNBENCH_REGISTRY", raising=False)
    with pytest.raises(UserError) as refused:
        load_suite(tmp_path / "rl9.yaml")
    assert any("unknown claim 'C9'" in p for p in refused.value.problems)
    monkeypatch.setenv("WNBENCH_REGISTRY", str(tmp_path / "registry.yaml"))
    assert load_suite(tmp_path / "rl9.yaml").claims == ("C9",)

    cells = {t: {"layer": [400.0, 420, 450], "batch": [50.0, 60, 70]} for t in ("CartPole-v1", "Acrobot-v1")}
    inputs = Inputs(records=_records(cells, suite="rl9", claims=("C9",)))
    results = analyze(inputs, reps=REPS)  # the registry from WNBENCH_REGISTRY
    assert [r.claim for r in results][-2:] == ["C9", "C10"]
    c9, c10 = _c(results, "C9"), _c(results, "C10")
    assert c9.verdict == "supported" and c9.suites == ["rl9"] and c10.verdict == "no data"
    paths = write_report(results, inputs, tmp_path / "report")
    md = paths["markdown"].read_text()
    assert "## C9 — LN beats BN in RL" in md and "Run suites/rl10.yaml (not yet written)." in md
    assert [f.path for f in c9.figures] == ["figures/c9_curves.png", "figures/c9_iqm.png"]
    assert all((tmp_path / "report" / f.path).stat().st_size > 1000 for f in c9.figures)
    verdicts = json.loads(paths["json"].read_text())
    assert {c["claim"]: c["verdict"] for c in verdicts["claims"]}["C9"] == "supported"
    (section,) = wandb_sections(results)  # C1-C8 have no records here; C10 has neither records nor panels
    assert (section.claim, section.curve_metrics, section.final_metrics) == (
        "C9",
        (EVAL_CURVE,),
        ("final_return",),
    )


def test_the_registry_carries_its_version_and_date_into_the_preregistration(tmp_path):
    from wnbench.report.registry import REGISTRY_V2_FILE, load_registry
    from wnbench.report.render import preregistration_markdown

    registry = load_registry("v2")
    assert (registry.version, registry.date.isoformat()) == (2, "2026-12-03")
    assert preregistration_markdown(registry).startswith("Registry version 2, dated 2026-12-03 (commit ")
    assert "Verdict rule" in preregistration_markdown(registry).split("\n")[0]
    bare = tmp_path / "bare.yaml"
    bare.write_text(REGISTRY_V2_FILE.read_text().replace("version: 2", "").replace("date: 2026-12-03", ""))
    assert preregistration_markdown(load_registry(bare)).startswith("Verdict rule")
    bad = tmp_path / "bad.yaml"
    bad.write_text(REGISTRY_V2_FILE.read_text().replace("figures: [lr]", "figures: [lr, pie]"))
    with pytest.raises(UserError) as err:
        load_registry(bad)
    assert any(p.startswith("claims.4.figures.1:") for p in err.value.problems)


def test_a_bad_registry_exits_2_listing_every_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("claims:\n  - id: C1\n    statement: s\n    analysis: magic\n    suites: [rl]\n    metric: m\n"
                   "    hypotheses: [{name: h, x: NOPE, y: [batch], family: f}]\n")  # fmt: skip
    write_fixture(tmp_path / "rl")
    proc = _cli(
        "report", str(tmp_path / "rl"), "--out", str(tmp_path / "r"), "--registry", str(bad), cwd=tmp_path
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "unknown arm set 'NOPE'" in proc.stderr
    bad.write_text(bad.read_text().replace("x: NOPE", "x: [weight]"))
    proc = _cli(
        "report", str(tmp_path / "rl"), "--out", str(tmp_path / "r"), "--registry", str(bad), cwd=tmp_path
    )
    assert proc.returncode == 2 and "claims.0.analysis" in proc.stderr


def _gen_record(run_id: str, task: str, norm: str, seed: int, value: float, **params) -> dict:
    r = _record(run_id, "gen", ["C2"], task, norm, seed, value, **params)
    r["config"].update(kind="gen", algo="gan")
    r["config"]["params"] = dict(params)
    r["metrics"] = {"hq_coverage_pct": float(value), "modes_covered": 8.0}
    r["curves"] = {}
    return r


def test_gen_placement_arms_share_their_cell_and_are_compared_as_arms():
    """The SN-GAN arm (SN on D alone) sits in the same ring8 cell as the both-network norms, under its own label,
    and the mixture headline is hq_coverage_pct (modes covered saturates)."""
    records = []
    for task in ("ring8", "grid25"):
        for seed in range(3):
            records.append(_gen_record(f"{task}-w{seed}", task, "weight", seed, 90.0 + seed))
            records.append(_gen_record(f"{task}-b{seed}", task, "batch", seed, 40.0 + seed))
            records.append(
                _gen_record(f"{task}-sn{seed}", task, "spectral", seed, 95.0 + seed, norm_on="discriminator")
            )
            records.append(
                _gen_record(f"{task}-wd{seed}", task, "weight", seed, 60.0 + seed, norm_on="discriminator")
            )
    c2 = _c(analyze(Inputs(records=records), reps=REPS), "C2")
    assert sorted(c.cell for c in c2.headline.cells) == ["grid25/gan", "ring8/gan"]  # norm_on splits no cell
    assert c2.headline.metric == "hq_coverage_pct"
    assert c2.headline.point == pytest.approx(
        1.0
    )  # weight (both) beats batch; weight@discriminator is not WN
    by_name = {h.name: h for h in c2.hypotheses}
    assert by_name["WN on D > SN on D (the SN-GAN arm)"].point == pytest.approx(0.0)
    assert by_name["WN on both > SN on D"].point == pytest.approx(0.0)
    assert set(c2.status_counts) == {"weight", "batch", "spectral@discriminator", "weight@discriminator"}


def test_mechanism_diagnostics_get_a_table_and_a_figure_per_diagnostic(tmp_path):
    """Runs that log ``diag/ratio_dev`` (PPO's first-minibatch ratio) get a per-arm table row (median over runs of
    each run's mean) and a figure; a diagnostic no run logs gets neither."""
    records = _records({"A-v0": {"weight": [5.0, 6, 7], "batch": [1.0, 2, 3]},
                        "B-v0": {"weight": [5.0, 6, 7], "batch": [1.0, 2, 3]}})  # fmt: skip
    for r in records:
        level = 0.0 if r["config"]["norm"] == "weight" else 0.2 + 0.1 * r["config"]["seed"]
        r["curves"]["diag/ratio_dev"] = {"step": [1000, 2000], "value": [level, 3 * level]}
    for r in records:
        write_record(tmp_path / "rl", r)
    build_report([tmp_path / "rl"], tmp_path / "out", reps=REPS)
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| A-v0/ppo | ratio_dev | 0.6 n=3 | 0 n=3 |" in text  # batch: means 0.4, 0.6, 0.8 -> median 0.6
    assert (tmp_path / "out" / "figures" / "c1_diag_ratio_dev.png").exists()
    assert not (tmp_path / "out" / "figures" / "c1_diag_q_bias.png").exists()


def test_a_vae_posterior_collapse_shows_as_its_active_units_in_the_mechanism_table(tmp_path):
    """A generative run's final mechanism figure (the VAE's active latent units) and its networks' per-epoch
    diagnostics (the decoder's effective learning rate) get a row per cell: the median over runs, per arm; a cell
    whose runs do not record one gets no row for it."""
    for task in ("ring8", "moons"):
        for seed in range(3):
            for norm, elbo, units in (("batch", -2.0, 2.0), ("weight", -2.5 - seed, 0.0 if seed else 1.0)):
                r = _gen_record(f"{task}-{norm}{seed}", task, norm, seed, 0.0)
                r["config"]["algo"] = "vae"
                r["metrics"] = {
                    "elbo_test_nats": elbo,
                    **({"active_units": units} if task == "ring8" else {}),
                }
                r["curves"] = {"diag/decoder_eff_lr": {"step": [1, 2], "value": [units, 3 * units]}}
                write_record(tmp_path / "gen", r)
    build_report([tmp_path / "gen"], tmp_path / "out", reps=REPS)
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| ring8/vae | active_units | 2 n=3 | 0 n=3 |" in text  # weight: 1, 0, 0 -> median 0
    assert "| moons/vae | active_units |" not in text
    assert "| ring8/vae | decoder_eff_lr | 4 n=3 | 0 n=3 |" in text  # each run's mean over its epochs


def test_generative_baselines_are_graded_against_their_floors_and_the_trivial_model(tmp_path):
    """With no published figure, a generative cell's no-norm arm still gets a line against each floor its records
    carry: the energy distance's real-vs-real level (the gap in raw units) and, for a VAE, the independent model: a
    median gain under 0.01 nats reads as learning nothing beyond it."""
    for task, gain in (("circles", 0.002), ("moons", 0.8)):
        for seed in range(3):
            for norm in ("none", "batch"):
                r = _gen_record(f"{task}-{norm}{seed}", task, norm, seed, 0.0)
                r["config"]["algo"] = "vae"
                r["metrics"] = {"elbo_test_nats": -2.0 - seed, "elbo_gain_over_baseline_nats": gain + 0.001 * seed,
                                "energy_distance": 0.02 + 0.01 * seed, "energy_distance_floor": 0.001}  # fmt: skip
                write_record(tmp_path / "gen", r)
    build_report([tmp_path / "gen"], tmp_path / "out", reps=REPS)
    text = (tmp_path / "out" / "report.md").read_text()
    rows = [
        line
        for line in text.splitlines()
        if "| none | " in line and ("floor" in line or "independent" in line)
    ]
    assert any(
        r.startswith("| circles/vae | none | elbo_gain_over_baseline_nats") and "learns nothing" in r
        for r in rows
    )
    assert any(
        r.startswith("| moons/vae | none | elbo_gain_over_baseline_nats") and "beats it by 0.801" in r
        for r in rows
    )
    assert any(r.startswith("| moons/vae | none | energy_distance | 0.03 [0.02, 0.04] n=3 | 0.001 |")
               and "0.029 from the floor" in r for r in rows)  # fmt: skip


def test_gradient_noise_reads_full_batch_where_the_update_uses_the_whole_rollout(tmp_path):
    """PPO whose minibatch is its rollout (the zoo's CartPole-v1: 256 = 8 envs x 32 steps) has no sampling noise:
    its grad_noise cell reads "full batch" (not a rounding-level number) and gets no curve; a PPO cell with
    minibatches smaller than the rollout keeps its measured values."""
    records = _records({"A-v0": {"weight": [5.0, 6, 7], "batch": [1.0, 2, 3]},
                        "B-v0": {"weight": [5.0, 6, 7], "batch": [1.0, 2, 3]}})  # fmt: skip
    for r in records:
        full = r["config"]["task"] == "A-v0"
        hp = {"n_envs": 8, "n_steps": 32, "batch_size": 256} if full else {"n_envs": 4, "n_steps": 1024}
        r["config"]["resolved"] = {"hyperparams": hp}
        value = 1e-14 if full else 2.0
        r["curves"]["diag/grad_noise"] = {"step": [1000, 2000], "value": [value, value]}
    for r in records:
        write_record(tmp_path / "rl", r)
    build_report([tmp_path / "rl"], tmp_path / "out", reps=REPS)
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| A-v0/ppo | grad_noise | full batch | full batch |" in text
    assert "| B-v0/ppo | grad_noise | 2 n=3 | 2 n=3 |" in text


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


def test_the_peer_table_grades_the_no_norm_arm_against_the_zoo():
    """CartPole-v1 (random 23.68, zoo 500): a median of 495 is at peer level; a median of 100 with one seed at 500
    is below peer with its best seed at peer; at half the zoo's steps a cell is at peer level there when its median
    is, and a sample-efficiency cell when it is not. Other arms do not enter the table, and a CrossQ cell's peer is
    stock CrossQ (batch renorm, pre), not no-norm."""
    from wnbench.report.cells import group_cells
    from wnbench.report.tables import peer_table

    def cell(task_values, steps, algo="ppo", norm="none"):
        out = _records({"CartPole-v1": {norm: task_values}})
        for r in out:
            r["config"].update(algo=algo, resolved={"n_timesteps": 100_000})
            r["metrics"]["total_steps"] = steps
            r["run_id"] += algo
        return out

    at_peer = cell([495.0, 490, 500], 100_000)
    below = cell([100.0, 90, 500], 100_000, algo="dqn")
    short = cell([495.0, 490, 500], 50_000, algo="a2c")
    short_below = cell([100.0, 90, 120], 50_000, algo="td3")
    stock = cell([500.0, 500, 500], 100_000, algo="crossq", norm="batch_renorm")
    for r in stock:
        r["config"]["norm"] = "batch_renorm[placement=pre]"
    other_arm = cell([10.0, 10, 10], 100_000, norm="weight")
    table = peer_table(group_cells(at_peer + below + short + short_below + stock + other_arm))
    rows = {row[0]: row for row in table.rows}
    assert rows["CartPole-v1/ppo"][1] == "none" and rows["CartPole-v1/ppo"][-1] == "at peer level"
    assert rows["CartPole-v1/ppo"][2] == "final_return"
    assert rows["CartPole-v1/ppo"][6] == "0.99 / 1.00"  # (495 - 23.68) / (500 - 23.68)
    assert rows["CartPole-v1/dqn"][-1].startswith("below peer in the median; best seed at peer")
    assert rows["CartPole-v1/a2c"][-1] == "at peer level at 50% of the zoo's steps"
    assert rows["CartPole-v1/td3"][-1].startswith("short budget (50% of the zoo's steps)")
    assert rows["CartPole-v1/crossq"][1] == "batch_renorm[placement=pre]"
    assert rows["CartPole-v1/crossq"][-1] == "at peer level"


def _gan_records(
    task: str, norm: str, hq: list[float], modes: list[float], coverage: list[float]
) -> list[dict]:
    out = []
    for seed, (h, m, c) in enumerate(zip(hq, modes, coverage, strict=True)):
        r = _record(f"{task}-{norm}-{seed}", "gen", ["C2"], task, norm, seed, 0.0)
        r["config"].update(kind="gen", algo="gan", budget={"steps": None})
        r["metrics"] = {"high_quality_pct": h, "modes_covered_any": m, "hq_coverage_pct": c}
        r["curves"] = {}
        out.append(r)
    return out


def test_mixture_gan_baselines_are_graded_against_pacgan_and_a_below_peer_cell_gets_its_own_verdict():
    """PacGAN Table 1's unmodified GAN: ring8 98.2 % high-quality samples and 6.3 modes, grid25 94.8 % and 17.3.
    A no-norm grid25 GAN with 88 % high-quality samples covers more modes than PacGAN's but is below its HQ share
    (88 / 94.8 = 0.93 < 0.95): the cell is below peer, and C2's headline is tested again without it."""
    from wnbench.report.cells import group_cells
    from wnbench.report.tables import peer_table

    records = (
        _gan_records("ring8", "none", [97.0, 96.0, 98.0], [8, 7, 8], [80.0, 82, 84])
        + _gan_records("ring8", "weight", [97.0, 96.0, 98.0], [8, 8, 8], [90.0, 91, 92])
        + _gan_records("ring8", "batch", [97.0, 96.0, 98.0], [6, 6, 7], [60.0, 61, 62])
        + _gan_records("grid25", "none", [88.0, 87.0, 89.0], [19, 18, 20], [45.0, 46, 47])
        + _gan_records("grid25", "weight", [88.0, 87.0, 89.0], [19, 18, 20], [40.0, 41, 42])
        + _gan_records("grid25", "batch", [88.0, 87.0, 89.0], [19, 18, 20], [50.0, 51, 52])
        + _gan_records("moons", "none", [88.0, 87.0, 89.0], [1, 1, 1], [45.0, 46, 47])  # no published figure
    )
    rows = [row for row in peer_table(group_cells(records)).rows]
    graded = {(row[0], row[2]): row for row in rows}
    assert set(graded) == {(c, m) for c in ("ring8/gan", "grid25/gan") for m in ("modes_covered_any",
                                                                                  "high_quality_pct")}  # fmt: skip
    assert graded[("ring8/gan", "high_quality_pct")][-1] == "at peer level"
    assert graded[("ring8/gan", "modes_covered_any")][6] == f"{8 / 6.3:.2f} / {8 / 6.3:.2f}"
    assert graded[("grid25/gan", "modes_covered_any")][-1] == "at peer level"
    assert graded[("grid25/gan", "high_quality_pct")][-1] == "below peer level"  # best 89 / 94.8 = 0.94
    assert "PacGAN Table 1 GAN 94.8" in graded[("grid25/gan", "high_quality_pct")][4]
    c2 = _c(analyze(Inputs(records=records), reps=REPS), "C2")
    assert [c.cell for c in c2.headline.cells] == ["grid25/gan", "ring8/gan"]
    assert [c.cell for c in c2.peer_headline.cells] == ["ring8/gan"]


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
