"""One run in its own process: seed, track, call the kind's ``run``, turn the outcome into a record.

:func:`execute_run` runs inside the child and never raises (an exception becomes a ``failed`` record; one that
says OUT is full or unwritable also gets ``storage_error``, on which the driver stops the suite without writing it).
:class:`RunProcess` is the parent's handle on that child: it enforces the time limit (kill -> ``timeout``) and
turns a dead child without a record (segfault, OOM kill) into a ``failed`` record. Both executors use it, so the
local pool and Ray produce the same records.

A run process never outlives the process that started it (the suite driver, or the Ray worker running the task):
a watchdog thread waits on the owner's pidfd and, when the owner is gone -- even SIGKILLed -- kills the run's own
children and exits. Records are written only by the driver, so an orphaned run could not write one anyway; killing
it frees the cores and closes the forkserver's last "alive" pipe, so the forkserver exits too. Run processes
ignore SIGINT and SIGHUP: a Ctrl-C or a closed terminal reaches the driver, which stops them itself.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import select
import signal
import socket
import sys
import threading
import time
import traceback
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .kinds import Diverged, RunContext, finite_or_none, get_kind, json_safe
from .spec import ResolvedRun
from .store import RECORD_SCHEMA, storage_problem, versions

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
        "details": {},
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
    run_cpu_started = 0.0
    try:
        _seed_everything(run.seed)
        spec = run.to_spec()
        run_function = get_kind(run.kind).run_function()
        run_started = time.time()
        run_cpu_started = time.process_time()
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
    except BaseException as err:  # noqa: BLE001 - any exception is this run's failure, never the suite's...
        record["status"] = "failed"
        record["error"] = traceback.format_exc()
        exit_code = 1
        if problem := storage_problem(err, out_dir):  # ...except a full disk: the driver stops the suite
            record["storage_error"] = problem
    run_ended = time.time()
    run_cpu_s = time.process_time() - run_cpu_started if run_started else None
    tracker.finish(exit_code=exit_code)
    record["timings"] = {
        "tracking_init_s": round(tracking_started - started, 3),
        "run_s": round(run_ended - run_started, 3) if run_started else None,
        "tracking_finish_s": round(time.time() - run_ended, 3),
        "run_cpu_s": round(run_cpu_s, 3) if run_cpu_s is not None else None,
        **process_cpu_times(),
    }
    record["curves"] = _clean_curves(ctx.curves)
    try:
        record["details"] = json_safe(ctx.details)
    except Exception as err:  # noqa: BLE001 - odd details must not cost the run its record
        record["details"] = {"error": f"details not recordable: {type(err).__name__}: {err}"}
    record["tracking"] = {**tracker.info, "error": tracker.error}
    record["finished_at"] = _now_iso()
    record["wall_time_s"] = round(time.time() - started, 3)
    return record


def process_cpu_times() -> dict[str, float]:
    """CPU seconds of this process (user + system) and of its waited-for children: what sizes a suite on a
    shared machine, where wall time depends on the neighbours. Meant for a run process (a fresh fork)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_user_s": round(own.ru_utime, 3),
        "cpu_system_s": round(own.ru_stime, 3),
        "cpu_s": round(own.ru_utime + own.ru_stime, 3),
        "children_cpu_s": round(children.ru_utime + children.ru_stime, 3),
    }


def _kill_descendants(pid: int) -> None:
    """SIGKILL every descendant of ``pid`` (not ``pid`` itself); needs psutil, else does nothing."""
    try:
        import psutil

        children = psutil.Process(pid).children(recursive=True)
    except Exception:  # noqa: BLE001 - psutil missing or the process is gone
        return
    for proc in children:
        with contextlib.suppress(Exception):  # already gone
            proc.kill()


def _owner_gone(owner_pid: int) -> None:
    """Block until process ``owner_pid`` has exited (pidfd where the OS has it, else polling)."""
    try:
        fd = os.pidfd_open(owner_pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):  # not Linux >= 5.3
        while True:
            try:
                os.kill(owner_pid, 0)
            except ProcessLookupError:
                return
            except PermissionError:
                pass
            time.sleep(0.5)
    try:
        select.select([fd], [], [])
    finally:
        os.close(fd)


def watch_owner(owner_pid: int) -> threading.Thread:
    """In a run process: a daemon thread that ends this process (and its children) once ``owner_pid`` is gone."""

    def watch() -> None:
        _owner_gone(owner_pid)
        _kill_descendants(os.getpid())
        os._exit(128 + signal.SIGTERM)

    thread = threading.Thread(target=watch, name="wnbench-owner-watch", daemon=True)
    thread.start()
    return thread


def _child_main(
    conn: Connection, run: ResolvedRun, out_dir: str, tracking: Any, env: dict[str, str], owner_pid: int
) -> None:
    """Entry point of a run process: one thread, output to ``run_dir/output.log``, record back over ``conn``.

    Sends ``("started", t)`` first (the time limit runs from there, not from the fork request: the first
    process waits for the forkserver to import torch), then ``("record", record)``. Dies with ``owner_pid``.
    """
    started = time.time()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    watch_owner(owner_pid)
    conn.send(("started", started))
    os.environ.clear()
    os.environ.update(env)
    os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    import torch

    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    run_dir = Path(out_dir) / "runs" / run.run_id
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        log_fd = os.open(run_dir / "output.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as err:  # OUT is full or unwritable (or stranger): a record that says so, no traceback
        record = base_record(run)
        record.update(status="failed", error=f"cannot start the run: {err}", started_at=_now_iso())
        if problem := storage_problem(err, out_dir):
            record["storage_error"] = problem
        conn.send(("record", record))
        conn.close()
        return
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
    """SIGKILL ``pid`` and its descendants (children first, so none is re-parented and missed)."""
    _kill_descendants(pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _cpu_of_tree(pid: int) -> dict[str, float]:
    """CPU seconds used so far by a live run process and its children (psutil; empty without it)."""
    try:
        import psutil

        proc = psutil.Process(pid)
        times = proc.cpu_times()
        children = sum(c.cpu_times().user + c.cpu_times().system for c in proc.children(recursive=True))
    except Exception:  # noqa: BLE001 - psutil missing or the process is gone
        return {}
    return {
        "cpu_user_s": round(times.user, 3),
        "cpu_system_s": round(times.system, 3),
        "cpu_s": round(times.user + times.system, 3),
        "children_cpu_s": round(children + times.children_user + times.children_system, 3),
    }


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
            args=(send, self.run, self.out_dir, self.tracking, dict(os.environ), os.getpid()),
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
            cpu = _cpu_of_tree(self.process.pid)
            _kill_tree(self.process.pid)
            self._join()
            limit = self.run.time_limit_s
            self.record = self._failure("timeout", f"exceeded its time limit of {limit:g} s and was killed")
            if cpu:
                self.record["timings"] = cpu
        return self.record

    def kill(self) -> None:
        """Stop the run now (its whole process tree); it gets no record."""
        process = getattr(self, "process", None)
        if process is not None and process.pid is not None and process.is_alive():
            _kill_tree(process.pid)
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
