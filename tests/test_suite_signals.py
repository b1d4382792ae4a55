"""Stopping a suite: SIGTERM/SIGINT/SIGHUP stop in-flight runs with a clean exit; a SIGKILLed driver leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest

from wnbench.suite import load_suite, run_suite
from wnbench.suite.signals import Interrupted
from wnbench.tracking import TrackingOptions

WNBENCH = str(Path(sys.executable).parent / "wnbench")

# Two runs that stay in flight until stopped (the toy's test-only "hang" fault sleeps past its time limit).
IN_FLIGHT_SUITE = """name: stop
claims: [C5]
profiles:
  default:
    kind: toy
    tasks: [regression]
    algos: [mlp]
    norms: [none]
    params: {hidden: [8], n_train: 64, n_test: 16, fault: hang, fault_step: 1}
    seeds: 2
    budget: {time_limit_s: 120, steps: 20}
"""


def tagged_processes(tag: str) -> list[int]:
    """Live processes whose environment carries ``WNBENCH_TEST_TAG=tag`` (driver, forkserver, runs, helpers)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get("WNBENCH_TEST_TAG") == tag:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def wait_until(condition, timeout_s: float) -> bool:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def start_suite(tmp_path: Path) -> tuple[subprocess.Popen, Path, str]:
    """``wnbench run`` in its own session with a unique tag, once both runs are in flight."""
    path = tmp_path / "suite.yaml"
    path.write_text(IN_FLIGHT_SUITE)
    out = tmp_path / "out"
    tag = uuid.uuid4().hex
    proc = subprocess.Popen(
        [WNBENCH, "run", str(path), "--out", str(out), "--workers", "2", "--no-wandb"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "WNBENCH_TEST_TAG": tag},
    )
    # A run process creates its output.log once it has started: then both are in flight.
    in_flight = wait_until(
        lambda: len(list(out.glob("runs/*/output.log"))) == 2 or proc.poll() is not None, 120
    )
    assert in_flight and proc.poll() is None, proc.communicate()
    return proc, out, tag


def test_sigterm_stops_in_flight_runs_and_exits_143_leaving_no_process(tmp_path):
    proc, out, tag = start_suite(tmp_path)
    assert len(tagged_processes(tag)) >= 4  # driver, forkserver, two runs
    proc.send_signal(signal.SIGTERM)  # the driver only, as a process manager would
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stdout + stderr
    assert stderr.strip().splitlines()[-1] == "interrupted; rerun the same command to resume"
    assert "Traceback" not in stderr
    assert wait_until(lambda: not tagged_processes(tag), 10), f"left behind: {tagged_processes(tag)}"
    assert not list(out.glob("runs/*/record.json"))  # in-flight runs have no record, so they rerun
    assert not list(out.glob("runs/*/.record-*"))  # and no half-written one


def test_sigkill_of_the_driver_alone_takes_forkserver_and_runs_with_it(tmp_path):
    proc, out, tag = start_suite(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)  # not the process group: the runs must notice on their own
    proc.communicate(timeout=30)
    assert wait_until(lambda: not tagged_processes(tag), 10), f"left behind: {tagged_processes(tag)}"
    assert not list(out.glob("runs/*/record.json"))


def forked_runs() -> list[psutil.Process]:
    """Live processes forked by this process's multiprocessing forkserver (the run processes)."""
    runs = []
    for server in psutil.Process().children():
        try:
            if "multiprocessing.forkserver" in " ".join(server.cmdline()):
                runs += [c for c in server.children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE]
        except psutil.Error:
            continue
    return runs


def test_sighup_in_process_raises_interrupted_after_killing_the_runs(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(IN_FLIGHT_SUITE)
    out = tmp_path / "out"
    seen_in_flight = []

    def hang_up_once_in_flight() -> None:
        if wait_until(lambda: len(list(out.glob("runs/*/output.log"))) == 2, 120):
            seen_in_flight.append(len(forked_runs()))
            os.kill(os.getpid(), signal.SIGHUP)

    outer = signal.signal(signal.SIGHUP, signal.SIG_DFL)  # a terminal's default (nohup would ignore it)
    try:
        threading.Thread(target=hang_up_once_in_flight, daemon=True).start()
        with pytest.raises(Interrupted) as stopped:
            run_suite(load_suite(path), out, workers=2, tracking=TrackingOptions(mode="disabled"), rich=False)
        assert stopped.value.exit_code == 128 + signal.SIGHUP
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL  # the driver's handlers are restored
    finally:
        signal.signal(signal.SIGHUP, outer)
    assert seen_in_flight and seen_in_flight[0] >= 2
    assert wait_until(lambda: not forked_runs(), 5), forked_runs()  # the forkserver stays; its runs are gone
    assert not list(out.glob("runs/*/record.json"))


def test_a_signal_ignored_before_the_suite_stays_ignored(tmp_path):
    """Under ``nohup`` SIGHUP is ignored: the suite must not turn it into a stop (a closed terminal would end it)."""
    from wnbench.suite.signals import interrupts_stop_the_suite

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with interrupts_stop_the_suite():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_IGN, signal.SIG_DFL)  # still handled
            os.kill(os.getpid(), signal.SIGHUP)  # ignored: no Interrupted
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
