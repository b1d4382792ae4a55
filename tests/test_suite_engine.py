"""The engine end to end on toy runs: failure isolation, resume, determinism, SIGKILL safety, Ray == local, W&B."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wnbench.norms import make_norm
from wnbench.suite import iter_records, load_suite, read_record, run_suite, status_of
from wnbench.tracking import TrackingOptions

ROOT = Path(__file__).resolve().parents[1]
WNBENCH = str(Path(sys.executable).parent / "wnbench")
FAULTS = """
  default:
    kind: toy
    tasks: [regression]
    algos: [mlp]
    norms: [weight_ddi]
    params: {hidden: [16], n_train: 256, n_test: 64, fault_step: 7}
    seeds: 1
    budget: {time_limit_s: 4, steps: 40}
    grids:
      - {seeds: 2}
      - {params: {fault: raise}}
      - {params: {fault: nan}}
      - {params: {fault: hang}}
      - {params: {fault: crash}}
"""


def test_failures_stay_isolated_and_resume_reruns_only_failures(
    tmp_path, monkeypatch, capsys, suite_file, no_wandb
):
    from wnbench import cli

    suite = load_suite(suite_file(FAULTS))
    out = tmp_path / "out"
    result = run_suite(suite, out, workers=2, tracking=no_wandb, rich=False)
    by_fault = {r["config"]["params"]["fault"]: r for r in result.records if r["config"]["seed"] == 0}
    finished = [r for r in result.records if r["config"]["params"]["fault"] == "none"]

    assert len(result.records) == 6 and result.exit_code == 1
    assert [r["status"] for r in finished] == ["finished", "finished"]
    assert all(math.isfinite(r["metrics"]["test_mse"]) for r in finished)
    assert by_fault["raise"]["status"] == "failed"
    assert "RuntimeError: toy fault injected: raise" in by_fault["raise"]["error"]
    assert by_fault["nan"]["status"] == "diverged" and by_fault["nan"]["diverged_at_step"] == 7
    assert by_fault["hang"]["status"] == "timeout" and "time limit of 4 s" in by_fault["hang"]["error"]
    assert by_fault["crash"]["status"] == "failed" and "SIGKILL" in by_fault["crash"]["error"]
    for record in result.records:  # every outcome has a complete, readable record on disk
        assert read_record(out, record["run_id"]) == record

    status = status_of(out)
    assert status["counts"] == {"finished": 2, "diverged": 1, "failed": 2, "timeout": 1, "pending": 0}
    assert {f["error"] for f in status["failures"]} >= {"RuntimeError: toy fault injected: raise (test-only)"}
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["wnbench", "status", str(out)])
    with pytest.raises(SystemExit):
        cli.main()
    shown = capsys.readouterr().out
    assert "finished: 2  diverged: 1  failed: 2  timeout: 1  pending: 0" in shown
    assert "RuntimeError: toy fault injected: raise (test-only)" in shown and "Traceback" not in shown

    # Resume: finished and diverged are results, kept; failed and timeout are rerun.
    again = run_suite(suite, out, workers=2, tracking=no_wandb, rich=False, summary=False)
    assert again.skipped == 3
    assert sorted(r["config"]["params"]["fault"] for r in again.records) == ["crash", "hang", "raise"]


def test_same_spec_gives_identical_metrics_and_curves_across_processes(tmp_path, suite_file, no_wandb):
    suite = load_suite(suite_file("""
  default:
    kind: toy
    tasks: [regression]
    algos: [mlp]
    norms: [batch, weight_ddi]
    params: {hidden: [32, 32]}
    seeds: 2
    budget: {steps: 60}
"""))  # fmt: skip
    first = run_suite(suite, tmp_path / "a", workers=2, tracking=no_wandb, rich=False, summary=False)
    second = run_suite(suite, tmp_path / "b", workers=1, tracking=no_wandb, rich=False, summary=False)
    a = {r["run_id"]: (r["metrics"], r["curves"]) for r in first.records}
    b = {r["run_id"]: (r["metrics"], r["curves"]) for r in second.records}
    assert a == b
    for record in first.records:
        timings = record["timings"]
        # CPU time of the run's own process (the driver has used far more by now), the kind's part within it.
        assert 0 < timings["run_cpu_s"] <= timings["cpu_s"] < record["wall_time_s"] + 1.0
        assert timings["cpu_s"] == pytest.approx(timings["cpu_user_s"] + timings["cpu_system_s"], abs=0.01)
        assert timings["children_cpu_s"] >= 0
        model = make_norm(record["config"]["norm"]).mlp(8, [32, 32], 1)  # what ctx.details says it trained
        assert record["details"]["parameters"] == sum(p.numel() for p in model.parameters())
    seeds = {(r["config"]["norm"], r["config"]["seed"]): r["metrics"]["test_mse"] for r in first.records}
    assert seeds[("batch", 0)] != seeds[("batch", 1)]  # the seed matters
    assert seeds[("batch", 0)] != seeds[("weight_ddi", 0)]  # the norm matters


SIGKILL_SUITE = """
  default:
    kind: toy
    tasks: [regression]
    algos: [mlp]
    norms: [none, weight]
    params: {hidden: [32], n_train: 256}
    seeds: 3
    budget: {steps: 500, time_limit_s: 60}
"""


def test_sigkill_of_the_whole_suite_loses_only_runs_in_flight(tmp_path, monkeypatch, capsys, suite_file):
    from wnbench import cli

    path = suite_file(SIGKILL_SUITE, name="engine")
    out = tmp_path / "out"
    cmd = [WNBENCH, "run", str(path), "--out", str(out), "--workers", "2", "--no-wandb"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 90
    while len(list(out.glob("runs/*/record.json"))) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the suite finished before it could be killed"

    before = {p.parent.name: p.read_bytes() for p in out.glob("runs/*/record.json")}
    assert 2 <= len(before) < 6
    for blob in before.values():  # atomic writes: every record on disk is complete JSON with a result
        assert json.loads(blob)["status"] == "finished"

    monkeypatch.setattr(sys, "argv", cmd + ["--dry-run"])
    with pytest.raises(SystemExit) as dry_exit:
        cli.main()
    assert dry_exit.value.code in (0, None)
    assert (
        f"6 runs in engine/default: {len(before)} done, {6 - len(before)} to run" in capsys.readouterr().out
    )

    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{6 - len(before)} runs to do ({len(before)} already done)" in resumed.stdout
    after = {p.parent.name: p.read_bytes() for p in out.glob("runs/*/record.json")}
    assert len(after) == 6  # no run lost
    assert all(after[run_id] == blob for run_id, blob in before.items())  # no finished run re-run
    assert {r["run_id"] for r in iter_records(out)} == {r.run_id for r in load_suite(path).runs}


def test_wandb_offline_run_is_written_and_readable(tmp_path, suite_file):
    suite = load_suite(suite_file("""
  default: {kind: toy, tasks: [regression], algos: [mlp], norms: [weight_ddi], seeds: 1, budget: {steps: 30}}
"""))  # fmt: skip
    out = tmp_path / "out"
    tracking = TrackingOptions(mode="offline", project="wnbench-test", dir=str(out))
    (record,) = run_suite(suite, out, workers=1, tracking=tracking, rich=False, summary=False).records
    assert record["status"] == "finished" and record["tracking"]["error"] is None
    run_dir = Path(record["tracking"]["dir"])
    assert run_dir.parent == out / "wandb"
    shown = subprocess.run(
        [str(Path(sys.executable).parent / "wandb"), "leet", "inspect", "--summary", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    summary = json.loads(shown.stdout)
    assert summary["state"] == "finished" and summary["project"] == "wnbench-test"
    assert summary["summary"]["test_mse"] == pytest.approx(record["metrics"]["test_mse"])
    assert summary["summary"]["_step"] == 30
    assert summary["config"]["run_id"] == record["run_id"]
    assert "norm:weight_ddi" in summary["tags"]


RAY_SUITE = """
  default:
    kind: toy
    tasks: [regression]
    algos: [mlp]
    norms: [none, batch, weight_ddi]
    params: {hidden: [16], n_train: 256}
    seeds: 1
    budget: {steps: 40, time_limit_s: 300}  # a guard only: a loaded CI machine starts Ray workers slowly
"""


def test_ray_executor_gives_the_same_records_as_local(tmp_path, monkeypatch, suite_file, no_wandb):
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    suite = load_suite(suite_file(RAY_SUITE))
    local = run_suite(suite, tmp_path / "local", workers=2, tracking=no_wandb, rich=False, summary=False)
    ray_run = run_suite(
        suite, tmp_path / "ray", executor="ray", workers=2, tracking=no_wandb, rich=False, summary=False
    )

    def comparable(records):
        return {r["run_id"]: (r["status"], r["config"], r["metrics"], r["curves"]) for r in records}

    assert comparable(local.records) == comparable(ray_run.records)
    assert {r["run_id"] for r in iter_records(tmp_path / "ray")} == {r.run_id for r in suite.runs}


def test_two_suites_cannot_run_into_one_folder_at_once(tmp_path, suite_file, no_wandb):
    from wnbench.errors import UserError
    from wnbench.suite.engine import _lock_out_dir

    suite = load_suite(suite_file(RAY_SUITE))
    held = _lock_out_dir(tmp_path / "out")
    with pytest.raises(UserError, match="in use by another `wnbench run`"):
        run_suite(suite, tmp_path / "out", tracking=no_wandb, rich=False)
    held.close()
    assert not list((tmp_path / "out").glob("runs/*"))


def test_stop_after_starts_nothing_past_the_deadline_and_lets_runs_in_flight_finish(
    tmp_path, suite_file, no_wandb
):
    suite = load_suite(suite_file(SIGKILL_SUITE), overrides={"budget.steps": 6000})  # seconds a run
    out, total = tmp_path / "out", len(suite.runs)

    nothing = run_suite(suite, out, workers=1, tracking=no_wandb, rich=False, start_until=time.time())
    assert nothing.records == [] and nothing.left == total and not list(out.glob("runs/*/record.json"))

    # One worker, a deadline 1 s away, runs of several seconds each: the first run starts before the deadline and
    # is allowed to finish; nothing starts after it.
    some = run_suite(suite, out, workers=1, tracking=no_wandb, rich=False, start_until=time.time() + 1.0)
    assert 1 <= len(some.records) < total and some.left == total - len(some.records)
    assert [r["status"] for r in some.records] == ["finished"] * len(some.records)  # in flight: not killed
    assert len(list(out.glob("runs/*/record.json"))) == len(some.records)

    rest = run_suite(suite, out, workers=2, tracking=no_wandb, rich=False)
    assert len(rest.records) == some.left and rest.skipped == len(some.records) and rest.left == 0
    assert {r["run_id"] for r in iter_records(out)} == {r.run_id for r in suite.runs}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--stop-after", "soon"], "--stop-after: 'soon' is not a duration; write e.g. 2h30m"),
        (["--stop-after", "2h30"], "--stop-after: '2h30' is not a duration"),
        (["--stop-after", "1h", "--executor", "ray"], "--stop-after: works with the local executor only"),
    ],
)
def test_a_bad_stop_after_exits_2_naming_the_option(
    tmp_path, monkeypatch, capsys, extra, message, suite_file
):
    from wnbench import cli

    path = suite_file(SIGKILL_SUITE, name="engine")
    monkeypatch.setattr(
        sys, "argv", [WNBENCH, "run", str(path), "--out", str(tmp_path / "out"), "--no-wandb", *extra]
    )
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


PROBE_KIND = """
import time
from pydantic import BaseModel, ConfigDict
class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fail: bool = False
def run(spec, ctx):
    ctx.details.update(device="cpu", ratio=float("nan"), shape=(2, 3), norms={"encoder": object()})
    busy_until = time.process_time() + 0.3
    while time.process_time() < busy_until:
        pass
    time.sleep(0.3)
    if spec.params.fail:
        raise RuntimeError("probe failure")
    return {"x": 1.0}
"""


def test_run_details_and_cpu_time_reach_the_record_as_strict_json(
    tmp_path, monkeypatch, suite_file, no_wandb
):
    from wnbench.suite import kinds, write_record
    from wnbench.suite.worker import execute_run

    monkeypatch.syspath_prepend(str(tmp_path))
    module = f"probe_details_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(PROBE_KIND)
    monkeypatch.setitem(kinds._KINDS, "probe", kinds.RunKind("probe", f"{module}:Params", f"{module}:run"))
    suite = load_suite(suite_file("""
  default: {kind: probe, tasks: [t], algos: [a], norms: [none], sweep: {fail: [false, true]}, seeds: 1}
"""))  # fmt: skip
    for run in suite.runs:
        record = execute_run(run, str(tmp_path / "out"), no_wandb)
        write_record(tmp_path / "out", record)  # strict JSON (allow_nan=False): this raises on a NaN
        assert read_record(tmp_path / "out", run.run_id)["details"] == {
            "device": "cpu",
            "ratio": None,
            "shape": [2, 3],
            "norms": {"encoder": record["details"]["norms"]["encoder"]},
        }
        assert record["details"]["norms"]["encoder"].startswith("<object object")
        # Failed runs keep their details too.
        assert record["status"] == ("failed" if run.params["fail"] else "finished")
        timings = record["timings"]
        assert 0.25 <= timings["run_cpu_s"] < timings["run_s"] - 0.2  # CPU time, not wall time


def test_records_and_published_files_get_the_usual_file_mode_not_mkstemps_0600(tmp_path):
    """On a shared --out (a cluster's NFS folder) other users read the records: an atomic write must leave the
    mode an ordinary write would (0666 less the umask), not the private 0600 of its temp file."""
    from wnbench.suite.store import atomic_write_json

    mask = os.umask(0)
    os.umask(mask)
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    (tmp_path / "b.json").write_text("{}")
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == (tmp_path / "b.json").stat().st_mode & 0o777
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~mask
