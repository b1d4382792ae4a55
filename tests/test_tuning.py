"""Tune, then evaluate (wnbench.suite.tuning): tuning seeds never reuse evaluation seeds, the choice is the best
median over tuning seeds, records carry the stage and the choice, and the report finds the tuned runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import toy_suite

from wnbench.errors import UserError
from wnbench.suite import iter_records, load_suite, run_suite
from wnbench.suite.tuning import TUNE_SEED_BASE, choose

TUNED = toy_suite(
    "tuned", claims="[C1]", norms="[none, weight]", n_train=128, n_test=64,
    budget="{time_limit_s: 30, steps: 30}", extra="    tune: {sweep: {lr: [0.0001, 0.03]}, seeds: 2}\n",
)  # fmt: skip


def test_tune_stage_never_reuses_an_evaluation_seed(tmp_path, suite_file):
    suite = load_suite(suite_file(text=TUNED))
    tune = [r for r in suite.runs if r.stage == "tune"]
    evals = [r for r in suite.runs if r.stage == "eval"]
    assert len(tune) == 2 * 2 * 2 and len(evals) == 2 * 2  # norms x grid points x tuning seeds; norms x seeds
    assert {r.seed for r in tune} == {TUNE_SEED_BASE, TUNE_SEED_BASE + 1}
    assert not {r.seed for r in tune} & {r.seed for r in evals}
    assert {r.params["lr"] for r in tune} == {0.0001, 0.03}
    assert all(r.config()["stage"] == "tune" and r.config()["tuning"]["keys"] == ["lr"] for r in tune)
    assert len(suite.tune_groups) == 2  # one per (task, algo, norm)


def test_tuning_seeds_that_overlap_evaluation_seeds_are_refused(tmp_path, suite_file):
    with pytest.raises(UserError) as err:
        load_suite(suite_file(text=TUNED.replace("seeds: 2}", "seeds: [1, 1000]}")))
    assert any("tune.seeds" in p and "[1] are also evaluation seeds" in p for p in err.value.problems)


def test_choice_is_the_best_median_and_ties_go_to_the_first_point():
    def rec(lr, value, status="finished"):
        return {"status": status, "config": {"kind": "toy", "task": "regression", "algo": "mlp", "params": {"lr": lr}},
                "metrics": {"test_mse": value}}  # fmt: skip

    # test_mse: lower is better. lr 0.1 has the best single run but the worse median.
    records = [
        rec(0.01, 0.2),
        rec(0.01, 0.3),
        rec(0.01, 0.25),
        rec(0.1, 0.01),
        rec(0.1, 0.9),
        rec(0.1, None, "diverged"),
    ]
    chosen = choose(records, ["lr"], {"lr": [0.01, 0.1]})
    assert chosen.choice == {"lr": 0.01} and chosen.runs == 6
    tie = choose([rec(0.01, 0.5), rec(0.1, 0.5)], ["lr"], {"lr": [0.1, 0.01]})
    assert tie.choice == {"lr": 0.1}


def _dry_run(monkeypatch, capsys, suite_file: Path, out: Path) -> str:
    import sys

    from wnbench import cli

    monkeypatch.setattr(sys, "argv", ["wnbench", "run", str(suite_file), "--out", str(out), "--dry-run"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code in (0, None)
    return capsys.readouterr().out


def test_tuned_runs_follow_the_tuning_stage_and_the_report_pairs_them(
    tmp_path, monkeypatch, capsys, suite_file, no_wandb
):
    from wnbench.report import load_inputs
    from wnbench.report.claims import stage_of, tuned_records

    out = tmp_path / "out"
    # before the tuning runs, a dry run cannot list the evaluation runs at the chosen rate, and says so
    dry = _dry_run(monkeypatch, capsys, suite_file(text=TUNED), out)
    assert "12 runs in tuned/default: 0 done, 12 to run" in dry and "2 tuning groups wait" in dry
    suite = load_suite(suite_file(text=TUNED))
    run_suite(suite, out, workers=2, tracking=no_wandb, rich=False, summary=False)
    # after them, it lists the evaluation runs the choice added, all done
    dry = _dry_run(monkeypatch, capsys, suite_file(text=TUNED), out)
    assert "16 runs in tuned/default: 16 done, 0 to run" in dry and "wait" not in dry
    records = list(iter_records(out))
    stages = {s: [r for r in records if stage_of(r) == s] for s in ("tune", "eval", "tuned")}
    assert len(stages["tune"]) == 8 and len(stages["eval"]) == 4
    # lr 0.0001 barely moves in 30 steps: 0.03 wins for both norms, on the evaluation seeds
    tuned = stages["tuned"]
    assert len(tuned) == 4 and {r["config"]["params"]["lr"] for r in tuned} == {0.03}
    assert {r["config"]["seed"] for r in tuned} == {0, 1}
    assert all(r["config"]["tuning"]["choice"] == {"lr": 0.03} for r in tuned)
    assert all(r["config"]["tuning"]["tune_seeds"] == [1000, 1001] for r in tuned)
    inputs = load_inputs([out])
    assert len(inputs.records) == 16  # the manifest lists the tuned runs too
    chosen, keys, lines = tuned_records(inputs.records)
    assert keys == ["lr"] and {r["run_id"] for r in chosen} == {r["run_id"] for r in tuned}
    # a second invocation has nothing left to do
    again = run_suite(
        load_suite(suite_file(text=TUNED)), out, workers=1, tracking=no_wandb, rich=False, summary=False
    )
    assert again.records == [] and again.skipped == 16
    # publishing keeps the tuned runs: they are in no profile's grid, only in what the tuning records chose
    from wnbench.suite.store import export_published, import_published

    _, _, count = export_published(out, tmp_path / "published")
    assert count == 16
    back = tmp_path / "back"
    import_published(tmp_path / "published" / "tuned.jsonl.gz", back)
    assert {r["run_id"] for r in tuned} <= {r["run_id"] for r in iter_records(back)}


def test_a_choice_equal_to_the_shared_setting_reuses_the_shared_runs(tmp_path, suite_file, no_wandb):
    """suites/rl.yaml's `tuned` profile lists the zoo's value first: where an arm keeps it, its evaluation runs are
    the paper's own runs (same ids), not a second copy."""
    from wnbench.report import load_inputs
    from wnbench.report.claims import stage_of, tuned_records

    text = TUNED.replace("n_test: 64}", "n_test: 64, lr: 0.03}").replace(
        "lr: [0.0001, 0.03]", "lr: [0.03, 0.0001]"
    )
    out = tmp_path / "out"
    run_suite(load_suite(suite_file(text=text)), out, workers=2, tracking=no_wandb, rich=False, summary=False)
    records = list(iter_records(out))
    assert not [r for r in records if stage_of(r) == "tuned"]  # no new evaluation runs
    evals = {r["run_id"] for r in records if stage_of(r) == "eval"}
    assert len(evals) == 4
    chosen, keys, _ = tuned_records(load_inputs([out]).records)
    assert keys == ["lr"] and {r["run_id"] for r in chosen} == evals


def test_only_runs_one_slice_with_the_profiles_run_ids_and_the_rest_resumes_after_it(
    tmp_path, suite_file, no_wandb
):
    """`wnbench run --only norm=weight`: the slice's ids are the whole profile's, so running the profile afterwards
    runs only what the slice left; its tuning group comes along. A filter that selects nothing is refused."""
    from wnbench.suite import select_runs

    path = suite_file(text=TUNED)
    whole = load_suite(path)
    part = select_runs(load_suite(path), ["norm=weight", "params.hidden=[8]"])
    assert {r.norm_label for r in part.runs} == {"weight"} and len(part.runs) == len(whole.runs) // 2
    assert {r.run_id for r in part.runs} <= {r.run_id for r in whole.runs}
    assert len(part.tune_groups) == 1
    out = tmp_path / "out"
    first = run_suite(part, out, workers=2, tracking=no_wandb, rich=False, summary=False)
    assert {r["config"]["norm"] for r in first.records} == {"weight"}
    assert any(r["config"].get("stage") == "tuned" for r in first.records)
    rest = run_suite(load_suite(path), out, workers=2, tracking=no_wandb, rich=False, summary=False)
    assert {r["config"]["norm"] for r in rest.records} == {"none"} and rest.skipped == len(first.records)
    with pytest.raises(UserError) as err:
        select_runs(load_suite(path), ["norm=spectral"])
    assert "selects none of the" in str(err.value) and any("none, weight" in p for p in err.value.problems)
    with pytest.raises(UserError, match="unknown field 'stage'"):
        select_runs(load_suite(path), ["stage=1"])


def test_only_seed_splits_a_profile_into_disjoint_slices_that_cover_it():
    """`--only seed=0,1` and `--only seed=2,3,4` on two machines: disjoint slices whose union is the profile's runs
    (so nothing is run twice); a seed that is not an integer is refused with the field named."""
    from wnbench.suite import select_runs

    path = Path(__file__).resolve().parents[1] / "suites" / "rl-recurrent.yaml"
    whole = {r.run_id for r in load_suite(path, profile="paper").runs}
    pend = ["task=wnbench/PendulumNoVel-v1", "norm=layer"]
    first = select_runs(load_suite(path, profile="paper"), [*pend, "seed=0,1"]).runs
    second = select_runs(load_suite(path, profile="paper"), [*pend, "seed=2, 3,4"]).runs
    assert sorted(r.seed for r in first) == [0, 1] and sorted(r.seed for r in second) == [2, 3, 4]
    both = {r.run_id for r in first} | {r.run_id for r in second}
    assert len(both) == 5 and both <= whole
    with pytest.raises(UserError, match="seeds must be integers"):
        select_runs(load_suite(path, profile="paper"), ["seed=one"])
    with pytest.raises(UserError, match="selects none"):
        select_runs(load_suite(path, profile="paper"), [*pend, "seed=7"])


def test_only_keeps_commas_inside_a_norm_label_or_a_yaml_list():
    """`--only "norm=batch[bn_mode=running,placement=pre],weight"` is two labels, not three fragments; so is a list
    value of ``params.KEY``."""
    from wnbench.suite import select_runs
    from wnbench.suite.spec import _split_top_level

    assert _split_top_level("batch[bn_mode=running,placement=pre],weight") == [
        "batch[bn_mode=running,placement=pre]", "weight"]  # fmt: skip
    assert _split_top_level("[8, 8],[16]") == ["[8, 8]", "[16]"]
    suite = load_suite(Path(__file__).resolve().parents[1] / "suites" / "rl.yaml", profile="paper")
    part = select_runs(suite, ["algo=crossq", "norm=batch[bn_mode=running,placement=pre],weight"])
    assert {r.norm_label for r in part.runs} == {"batch[bn_mode=running,placement=pre]", "weight"}
    assert len(part.runs) == 10
