"""``wnbench report`` from fixture records: verdicts, failed/diverged/missing runs shown, bad inputs refused."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from report_v2_fixtures import (
    RANDOM_CARTPOLE,
    REPS,
    _cli,
    _gen_record,
    _record,
    _records,
    _registry_v2,  # noqa: F401  (autouse: these tests check the v2 rules)
    write_fixture,
)

from wnbench.report import build_report, load_inputs
from wnbench.report.analyses.lr_robustness import good_lr_width
from wnbench.suite.store import RECORD_SCHEMA, write_record

WN_SET = ("weight", "weight_ddi", "weight+meanonly")


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
