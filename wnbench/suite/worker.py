"""One run in its own process: seed, track, call the kind's ``run``, turn the outcome into a record.

:func:`execute_run` runs inside the child and never raises (an exception becomes a ``failed`` record).
:class:`RunProcess` is the parent's handle on that child: it enforces the time limit (kill -> ``timeout``) and
turns a dead child without a record (segfault, OOM kill) into a ``failed`` record. Both executors use it, so the
local pool and Ray produce the same records.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import sys
import time
import traceback
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .kinds import Diverged, RunContext, finite_or_none, get_kind
from .spec import ResolvedRun
from .store import RECORD_SCHEMA, versions

__all__ = ["RunProcess", "execute_run", "mp_context"]

#: Grace for a run process to start (the first one waits for the forkserver to import torch).
STARTUP_ALLOWANCE_S = 120.0
# torch._dynamo: torch.optim imports it on first use (~1.5 s); paying that once in the forkserver saves it per run.
_PRELOAD = ["torch", "torch._dynamo", "numpy", "wnbench.norms", "wnbench.suite.worker", "wnbench.tracking"]


def mp_context(preload_modules: list[str] | None = None) -> multiprocessing.context.BaseContext:
    """A forkserver context that preloads torch (and the suite's kind modules): a fresh process per run, cheaply."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD + [m for m in preload_modules or [] if m not in _PRELOAD])
    return ctx


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def base_record(run: ResolvedRun) -> dict[str, Any]:
    """The fields every record has, before the outcome is known."""
    return {
        "schema": RECORD_SCHEMA,
        "run_id": run.run_id,
        "suite": run.suite,
        "claims": list(run.claims),
        "label": run.label,
        "status": None,
        "config": run.config(),
        "metrics": {},
        "curves": {},
        "error": None,
        "diverged_at_step": None,
        "wall_time_s": None,
        "timings": None,
        "started_at": None,
        "finished_at": None,
        "versions": versions(),
        "host": socket.gethostname(),
        "tracking": {"mode": "disabled"},
    }


def _clean_curves(curves: dict[str, dict[str, list]]) -> dict[str, dict[str, list]]:
    return {
        name: {"step": list(c["step"]), "value": [finite_or_none(v) for v in c["value"]]}
        for name, c in curves.items()
    }


def _seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def execute_run(
    run: ResolvedRun, out_dir: str, tracking: Any, deadline: float | None = None
) -> dict[str, Any]:
    """Run ``run`` here and return its record. Meant for a fresh process with one torch thread."""
    from wnbench.tracking import start_run

    record = base_record(run)
    started = time.time()
    record["started_at"] = _now_iso()
    run_dir = Path(out_dir) / "runs" / run.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    tracker = start_run(
        tracking,
        name=f"{run.task}/{run.algo}/{run.norm_label}/s{run.seed}",
        group=run.suite,
        job_type="+".join(run.claims) or None,
        tags=[f"norm:{run.norm_label}", f"task:{run.task}", f"algo:{run.algo}", f"kind:{run.kind}"],
        config={"run_id": run.run_id, "suite": run.suite, "claims": list(run.claims), **run.config()},
    )
    tracking_started = time.time()
    ctx = RunContext(
        run_id=run.run_id,
        run_dir=run_dir,
        seed=run.seed,
        deadline=deadline if deadline is not None else started + run.time_limit_s,
        tracker=tracker,
    )
    exit_code = 0
    run_started = 0.0
    try:
        _seed_everything(run.seed)
        spec = run.to_spec()
        run_function = get_kind(run.kind).run_function()
        run_started = time.time()
        metrics = dict(run_function(spec, ctx) or {})
        record["metrics"] = {k: finite_or_none(v) for k, v in metrics.items()}
        bad = sorted(k for k, v in record["metrics"].items() if v is None)
        if bad:
            record["status"] = "diverged"
            record["diverged_at_step"] = ctx.last_step
            record["error"] = f"non-finite final metric(s): {', '.join(bad)}"
        else:
            record["status"] = "finished"
        tracker.summary(metrics)
    except Diverged as err:
        record["status"] = "diverged"
        record["diverged_at_step"] = err.step
        record["error"] = str(err)
        record["metrics"] = {"diverged_at_step": float(err.step)}
        tracker.summary({"diverged_at_step": err.step})
    except BaseException:  # noqa: BLE001 - any exception is this run's failure, never the suite's
        record["status"] = "failed"
        record["error"] = traceback.format_exc()
        exit_code = 1
    run_ended = time.time()
    tracker.finish(exit_code=exit_code)
    record["timings"] = {
        "tracking_init_s": round(tracking_started - started, 3),
        "run_s": round(run_ended - run_started, 3) if run_started else None,
        "tracking_finish_s": round(time.time() - run_ended, 3),
    }
    record["curves"] = _clean_curves(ctx.curves)
    record["tracking"] = {**(tracker.info or {"mode": tracking.mode}), "error": tracker.error}
    record["finished_at"] = _now_iso()
    record["wall_time_s"] = round(time.time() - started, 3)
    return record


def _child_main(conn: Connection, run: ResolvedRun, out_dir: str, tracking: Any, env: dict[str, str]) -> None:
    """Entry point of a run process: one thread, output to ``run_dir/output.log``, record back over ``conn``.

    Sends ``("started", t)`` first (the time limit runs from there, not from the fork request: the first
    process waits for the forkserver to import torch), then ``("record", record)``.
    """
    started = time.time()
    conn.send(("started", started))
    os.environ.clear()
    os.environ.update(env)
    os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    import torch

    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    run_dir = Path(out_dir) / "runs" / run.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(run_dir / "output.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    record = execute_run(run, out_dir, tracking, started + run.time_limit_s)
    conn.send(("record", record))
    conn.close()


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (killed: out of memory?)" if exitcode == -signal.SIGKILL else ""
        return f"run process died from {name}{hint} before writing its record"
    return f"run process exited with code {exitcode} before writing its record"


def _kill_tree(pid: int) -> None:
    try:
        import psutil

        children = psutil.Process(pid).children(recursive=True)
    except Exception:  # noqa: BLE001 - psutil missing or the process is gone
        children = []
    for proc in children:
        with contextlib.suppress(Exception):  # already gone
            proc.kill()
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class RunProcess:
    """The parent's handle on one run process: start it, poll it, get its record (or a timeout/crash record)."""

    def __init__(
        self, run: ResolvedRun, out_dir: str | Path, tracking: Any, ctx: multiprocessing.context.BaseContext
    ):
        self.run = run
        self.out_dir = str(out_dir)
        self.tracking = tracking
        self._ctx = ctx
        self.started = 0.0
        self.child_started = 0.0
        self.deadline = 0.0
        self.record: dict[str, Any] | None = None

    def start(self) -> None:
        receive, send = self._ctx.Pipe(duplex=False)
        self.started = time.time()
        # Until the child says it has started, allow for process start-up on top of the time limit.
        self.deadline = self.started + self.run.time_limit_s + STARTUP_ALLOWANCE_S
        self._conn = receive
        self.process = self._ctx.Process(
            target=_child_main,
            args=(send, self.run, self.out_dir, self.tracking, dict(os.environ)),
            name=f"wnbench-run-{self.run.run_id}",
            daemon=False,
        )
        self.process.start()
        send.close()

    def waitables(self) -> list[Any]:
        return [self._conn, self.process.sentinel]

    def poll(self) -> dict[str, Any] | None:
        """The record once the run is over (finished, failed, diverged, crashed or timed out), else ``None``."""
        if self.record is not None:
            return self.record
        while self._conn.poll():
            try:
                kind, payload = self._conn.recv()
            except (EOFError, OSError):
                self.record = self._failure("failed", _describe_exit(self._join()))
                return self.record
            if kind == "started":
                self.deadline = payload + self.run.time_limit_s
                self.child_started = payload
            else:
                self.record = payload
                if self.record.get("timings") is not None and self.child_started:
                    self.record["timings"]["process_start_s"] = round(self.child_started - self.started, 3)
                self._join()
                return self.record
        if not self.process.is_alive():
            if self._conn.poll():  # the record arrived just before exit
                return self.poll()
            self.record = self._failure("failed", _describe_exit(self._join()))
            return self.record
        if time.time() >= self.deadline:
            _kill_tree(self.process.pid)
            self._join()
            limit = self.run.time_limit_s
            self.record = self._failure("timeout", f"exceeded its time limit of {limit:g} s and was killed")
        return self.record

    def kill(self) -> None:
        if self.process.is_alive():
            _kill_tree(self.process.pid)
            self._join()

    def _join(self) -> int | None:
        self.process.join(timeout=10)
        code = self.process.exitcode
        self._conn.close()
        return code

    def _failure(self, status: str, error: str) -> dict[str, Any]:
        record = base_record(self.run)
        record.update(
            status=status,
            error=error,
            started_at=datetime.fromtimestamp(self.started, UTC).isoformat(timespec="seconds"),
            finished_at=_now_iso(),
            wall_time_s=round(time.time() - self.started, 3),
            tracking={"mode": self.tracking.mode},
        )
        return record

    def wait(self, poll_s: float = 0.2) -> dict[str, Any]:
        """Block until the record is there (used by the Ray executor, one run per task)."""
        from multiprocessing.connection import wait

        while (record := self.poll()) is None:
            wait(self.waitables(), timeout=max(0.01, min(poll_s, self.deadline - time.time())))
        return record
