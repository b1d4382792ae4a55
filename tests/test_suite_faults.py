"""Faults without surprises: a W&B outage, a full or unwritable OUT, corrupt records, a lost Ray node."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import run_cli

from wnbench.suite import iter_records, load_suite, read_record, run_suite
from wnbench.suite.store import StorageError, iter_record_files, storage_problem
from wnbench.tracking import TrackingOptions

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# -- W&B circuit breaker --------------------------------------------------------------------------------------------


def test_breaker_trips_on_the_first_failed_online_init_and_later_runs_go_straight_offline(
    tmp_path, monkeypatch
):
    import wnbench.tracking as tracking

    calls = []

    def fake_init(options, **run_args):
        calls.append((run_args["name"], options.mode))
        tracker = tracking.Tracker(options, info={"mode": options.mode})
        if options.mode == "online":
            tracker.error = (
                "W&B init failed: CommError: Timed out while retrying: dial tcp: connection refused"
            )
        return tracker

    monkeypatch.setattr(tracking, "_init", fake_init)
    options = TrackingOptions(mode="online", dir=str(tmp_path))
    (tmp_path / "wandb").mkdir()
    (tmp_path / tracking.BREAKER_FILE).write_text('{"token": "from an earlier invocation", "reason": "old"}')
    armed = tracking.arm_breaker(options)
    assert (
        armed.breaker_token and not (tmp_path / tracking.BREAKER_FILE).exists()
    )  # the next run tries online
    assert tracking.breaker_notice(armed) is None

    first = tracking.start_run(armed, name="a")
    second = tracking.start_run(armed, name="b")
    assert calls == [("a", "online"), ("a", "offline"), ("b", "offline")]  # b never waits for W&B
    assert first.info["mode"] == second.info["mode"] == "offline" and first.error is None
    assert first.info["offline_because"] == (
        "online init failed: CommError: Timed out while retrying: dial tcp: connection refused"
    )
    assert second.info["offline_because"].startswith("an earlier run's online init failed: CommError")
    assert tracking.breaker_notice(armed) == (
        "wnbench: W&B online init failed (CommError: Timed out while retrying: dial tcp: connection refused); "
        f"the rest of this suite logs offline. Upload later with: wandb sync {tmp_path}/wandb/offline-run-*"
    )
    # Another invocation (another token) does not read this one's breaker; offline/disabled runs have none.
    assert tracking.breaker_notice(tracking.arm_breaker(options)) is None
    assert tracking.arm_breaker(TrackingOptions(mode="offline", dir=str(tmp_path))).breaker is None


def test_suite_against_a_dead_wandb_server_pays_one_timeout_not_one_per_run(
    tmp_path, monkeypatch, capsys, suite_file
):
    """Online mode, W&B at a closed local port: the two runs in flight at the outage wait out their init
    timeout; every later run logs offline at once, and the driver says so once, with the sync command."""
    import socket

    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    suite = load_suite(suite_file())
    out = tmp_path / "out"
    timeout = 2.0
    tracking = TrackingOptions(mode="online", dir=str(out), init_timeout_s=timeout)
    result = run_suite(suite, out, workers=2, tracking=tracking, rich=False, summary=False)

    records = result.records
    assert len(records) == 4 and {r["status"] for r in records} == {"finished"}
    assert {r["tracking"]["mode"] for r in records} == {"offline"}
    assert all(r["tracking"]["error"] is None and r["tracking"]["offline_because"] for r in records)
    tried = [r for r in records if r["tracking"]["offline_because"].startswith("online init failed")]
    assert 1 <= len(tried) <= 2  # only the runs in flight when the breaker tripped waited for W&B...
    assert all(r["timings"]["tracking_init_s"] >= timeout for r in tried)
    straight = [r for r in records if r not in tried]  # ...every later one went offline without trying
    assert all(
        r["tracking"]["offline_because"].startswith("an earlier run's online init failed") for r in straight
    )
    for record in records:  # every run is in W&B's offline folder, ready for `wandb sync`
        assert Path(record["tracking"]["dir"]).name.startswith("offline-run-")
    err = capsys.readouterr().err
    notices = [line for line in err.splitlines() if "the rest of this suite logs offline" in line]
    assert len(notices) == 1 and notices[0].endswith(f"wandb sync {out}/wandb/offline-run-*")


# -- a full or unwritable OUT ---------------------------------------------------------------------------------------


def _run_cli(monkeypatch, capsys, argv: list[str]) -> tuple[int, str, str]:
    return run_cli(monkeypatch, capsys, *argv)


def test_full_disk_stops_with_one_line_keeps_records_whole_and_resume_finishes(
    tmp_path, monkeypatch, capsys, suite_file
):
    path = suite_file()
    out = tmp_path / "out"
    argv = ["run", str(path), "--out", str(out), "--workers", "2", "--no-wandb"]
    real_fsync, synced = os.fsync, []

    def fsync_until_full(fd):  # the driver's third record write finds the disk full
        if len(synced) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_until_full)
    code, _, err = _run_cli(monkeypatch, capsys, argv)
    stored = {p.parent.name: p.read_bytes() for p in out.glob("runs/*/record.json")}
    assert code == 2 and len(stored) == 2  # the manifest and two records were written before the disk filled
    (line,) = err.strip().splitlines()
    assert re.fullmatch(
        rf"wnbench: error: cannot write {out}/runs/[0-9a-f]{{16}}/record\.json: no space left on device "
        r"\(the file system at /\S* has [\d.]+ [KMG]?i?B free\); free some space, then rerun the same command "
        r"to resume \(2 of 4 runs are stored\)",
        line,
    ), line
    assert not list(out.rglob("*.tmp"))  # the half-written record was removed
    assert all(json.loads(blob)["status"] == "finished" for blob in stored.values())

    monkeypatch.setattr(os, "fsync", real_fsync)  # space freed
    code, shown, _ = _run_cli(monkeypatch, capsys, argv)
    assert code == 0 and "2 runs to do (2 already done)" in shown
    assert {r["run_id"] for r in iter_records(out)} == {r.run_id for r in load_suite(path).runs}
    assert all(
        (out / "runs" / run_id / "record.json").read_bytes() == blob for run_id, blob in stored.items()
    )


def test_unwritable_out_is_one_line_naming_the_path(tmp_path, monkeypatch, capsys, suite_file):
    (tmp_path / "a_file").write_text("")
    out = tmp_path / "a_file" / "out"
    code, _, err = _run_cli(monkeypatch, capsys, ["run", str(suite_file()), "--out", str(out)])
    assert code == 2
    assert err.strip() == (
        f"wnbench: error: cannot write {out}: a file is in the way (not a directory); make it writable or "
        "choose another --out, then rerun the same command to resume (0 of 4 runs are stored)"
    )
    # Errors elsewhere are not OUT's: a run refused a file outside OUT stays that run's failure.
    assert storage_problem(PermissionError(errno.EACCES, "denied", "/etc/shadow"), tmp_path) is None
    assert storage_problem(OSError(errno.EIO, "I/O error", str(tmp_path)), tmp_path) is None
    wrapped = RuntimeError("saving the checkpoint failed")
    wrapped.__cause__ = OSError(errno.EDQUOT, "Disk quota exceeded", str(tmp_path / "ckpt.pt"))
    assert storage_problem(wrapped, tmp_path).startswith(
        f"cannot write {tmp_path}/ckpt.pt: disk quota exceeded"
    )


FULL_DISK_KIND = """
import errno, os
from pydantic import BaseModel, ConfigDict
class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    full: bool = False
def run(spec, ctx):
    if spec.params.full:
        with open(ctx.run_dir / "checkpoint.pt", "wb"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(ctx.run_dir / "checkpoint.pt"))
    return {"x": 1.0}
"""


def test_a_run_that_meets_a_full_disk_stops_the_suite_and_gets_no_record(
    tmp_path, monkeypatch, suite_file, no_wandb
):
    from wnbench.suite import engine, kinds
    from wnbench.suite.worker import execute_run

    monkeypatch.syspath_prepend(str(tmp_path))
    module = f"full_disk_kind_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(FULL_DISK_KIND)
    monkeypatch.setitem(
        kinds._KINDS, "fulldisk", kinds.RunKind("fulldisk", f"{module}:Params", f"{module}:run")
    )
    suite = load_suite(suite_file("""
  default: {kind: fulldisk, tasks: [t], algos: [a], norms: [none], sweep: {full: [false, true]}, seeds: 1}
"""))  # fmt: skip

    def in_process(runs, out_dir, tracking, **_):  # the executor's job, minus the processes
        for run in runs:
            yield run, execute_run(run, str(out_dir), tracking)

    monkeypatch.setitem(engine.EXECUTORS, "local", in_process)
    out = tmp_path / "out"
    with pytest.raises(StorageError) as err:
        run_suite(suite, out, tracking=no_wandb, rich=False, summary=False)
    full = next(r for r in suite.runs if r.params["full"])
    assert str(err.value).startswith(
        f"cannot write {out}/runs/{full.run_id}/checkpoint.pt: no space left on device"
    )
    assert str(err.value).endswith("then rerun the same command to resume (1 of 2 runs are stored)")
    assert read_record(out, full.run_id) is None  # not a failure of the run: rerun on resume
    assert [r["status"] for r in iter_records(out)] == ["finished"]


# -- corrupt records ------------------------------------------------------------------------------------------------


def test_corrupt_or_half_written_records_are_skipped_with_one_line_and_their_runs_rerun(
    tmp_path, suite_file, no_wandb
):
    from wnbench.report.records import load_inputs
    from wnbench.suite.engine import plan
    from wnbench.suite.store import write_record
    from wnbench.suite.worker import execute_run

    suite = load_suite(suite_file())
    out = tmp_path / "out"
    record = execute_run(suite.runs[0], str(out), no_wandb)
    for run in suite.runs:  # one real record, stored under each run's id
        write_record(out, {**record, "run_id": run.run_id, "config": run.config()})
    paths = sorted(out.glob("runs/*/record.json"))
    paths[0].write_bytes(
        paths[0].read_bytes()[:200]
    )  # half-written (not this engine's: its writes are atomic)
    paths[1].write_bytes(b"\xff\xfe" + paths[1].read_bytes())  # not UTF-8
    paths[2].write_text("[]")  # JSON, but not a record

    problems = {
        path.parent.name: str(data) for path, data in iter_record_files(out) if isinstance(data, Exception)
    }
    assert (
        len(problems) == 3
        and "not a run record (a JSON list, not an object)" in problems[paths[2].parent.name]
    )
    inputs = load_inputs([out])
    assert [r["run_id"] for r in inputs.records] == [paths[3].parent.name]  # the rest is reported
    assert len(inputs.skipped) == 3 and all("\n" not in line for line in inputs.skipped)
    assert all(
        line.startswith(f"{path}: unreadable (") for path, line in zip(paths, inputs.skipped, strict=False)
    )
    assert [record is None for _, record in plan(suite, out)].count(True) == 3  # resume reruns those runs


# -- multi-node Ray -------------------------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _node_ports() -> list[str]:
    """Ports of their own for each node: two nodes share this machine (and others may run Ray on it too)."""
    names = ["node-manager", "object-manager", "dashboard-agent-listen", "dashboard-agent-grpc", "runtime-env-agent",
             "metrics-export"]  # fmt: skip
    return [f"--{name}-port={_free_port()}" for name in names]


def _stop_cluster(temp_dir: str, gcs_port: int) -> None:
    """Kill this test's Ray processes, found by their temp dir or GCS port, by pid (`ray stop --force` would
    kill every Ray process on the machine, other users' too)."""
    import psutil

    ours = [
        p for p in psutil.process_iter(["cmdline"])
        if p.pid != os.getpid() and any(temp_dir in a or f":{gcs_port}" in a for a in p.info["cmdline"] or [])
    ]  # fmt: skip
    family = {p.pid: p for p in ours}
    for proc in ours:
        with contextlib.suppress(psutil.Error):
            family.update({c.pid: c for c in proc.children(recursive=True)})
    for proc in family.values():
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(list(family.values()), timeout=20)


@pytest.mark.slow
def test_smoke_suite_on_a_two_node_ray_cluster_survives_losing_a_node(tmp_path):
    """`ray start --head` plus a second node (one CPU each) on this machine; the smoke suite through
    RAY_ADDRESS; the second node is killed mid-suite. Every finished record is on disk, the runs lost with the
    node are failed records naming the lost task, and the resume reruns them and completes the suite."""
    pytest.importorskip("ray")
    psutil = pytest.importorskip("psutil")
    ray_cmd = str(BIN / "ray")
    if not Path(ray_cmd).exists():
        pytest.skip("no `ray` command next to this Python")
    temp_dir = tempfile.mkdtemp(prefix="wnray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = _free_port()
    address = f"127.0.0.1:{port}"
    env = {
        **os.environ,
        "HOME": str(tmp_path),  # no ~/.ray/auth_token from another cluster (the GCS would then demand it)
        "OMP_NUM_THREADS": "1",
        # Notice a dead node in ~2 s rather than ~30 s.
        "RAY_health_check_period_ms": "500",
        "RAY_health_check_timeout_ms": "500",
        "RAY_health_check_failure_threshold": "3",
    }
    common = [
        "--num-cpus=1",
        f"--temp-dir={temp_dir}",
        "--object-store-memory=100000000",
        "--disable-usage-stats",
    ]

    def ray(*args: str) -> None:
        done = subprocess.run([ray_cmd, *args], capture_output=True, text=True, timeout=180, env=env)
        assert done.returncode == 0, done.stdout + done.stderr

    try:
        ray("start", "--head", f"--port={port}", "--include-dashboard=false", f"--dashboard-port={_free_port()}",
            f"--ray-client-server-port={_free_port()}", *common, *_node_ports())  # fmt: skip
        worker_ports = _node_ports()
        ray("start", f"--address={address}", *common, *worker_ports)
        worker_port = worker_ports[0].split("=")[1]
        raylet = next(  # the second node's raylet: the one on the node-manager port we gave it
            p for p in psutil.process_iter(["cmdline"])
            if any(f"--node_manager_port={worker_port}" in part for part in p.info["cmdline"] or [])
        )  # fmt: skip

        out = tmp_path / "out"  # one folder both nodes see (the same machine)
        cmd = [str(BIN / "wnbench"), "run", str(ROOT / "suites/smoke.yaml"), "--profile", "smoke",
               "--executor", "ray", "--out", str(out), "--no-wandb", "--set", "seeds=3",
               "--set", "budget.steps=600"]  # fmt: skip
        run_env = {**env, "RAY_ADDRESS": address}
        started = time.time()
        driver = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=run_env
        )
        deadline = time.time() + 300
        while time.time() < deadline and driver.poll() is None:
            with contextlib.suppress(psutil.Error):
                busy = [c for c in raylet.children() if "ray::_ray_task" in " ".join(c.cmdline())]
                if busy and list(out.glob("runs/*/record.json")):
                    break  # a record is stored and a run is in flight on the second node
            time.sleep(0.2)
        assert driver.poll() is None, "the suite finished before the node could be killed"
        for proc in [*raylet.children(recursive=True), raylet]:  # the node dies: its raylet and workers
            with contextlib.suppress(psutil.Error):
                proc.kill()
        shown, _ = driver.communicate(timeout=300)
        first_wall = time.time() - started
        assert driver.returncode == 1, shown  # some runs failed: the lost ones

        finished_lines = re.findall(r"\] finished +([0-9a-f]{16}) ", shown)
        records = {r["run_id"]: r for r in iter_records(out)}
        assert finished_lines and all(records[run_id]["status"] == "finished" for run_id in finished_lines)
        lost = [r for r in records.values() if r["status"] == "failed"]
        assert lost and all("lost with its Ray worker or node" in r["error"] for r in lost), shown
        assert len(records) == 12  # every run has a record: finished or marked as lost

        resumed = subprocess.run(cmd, capture_output=True, text=True, env=run_env, timeout=300)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert f"{len(lost)} runs to do ({12 - len(lost)} already done)" in resumed.stdout
        assert {r["status"] for r in iter_records(out)} == {"finished"}
        print(
            f"two-node Ray: first pass {first_wall:.0f} s, {len(lost)} run(s) lost with the node, rerun on resume"
        )
    finally:
        _stop_cluster(temp_dir, port)
        shutil.rmtree(temp_dir, ignore_errors=True)
