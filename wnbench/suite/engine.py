"""Run a suite: skip what is done, execute the rest, write each record as it arrives, summarize.

The driver is the only writer of records (``OUT/runs/<id>/record.json``, atomic), one per completed run, so a
SIGKILL of the whole suite loses only the runs in flight. ``OUT/suite.json`` lists the runs of the last invocation.
SIGTERM, SIGHUP and SIGINT stop the suite (:mod:`wnbench.suite.signals`): in-flight runs are killed with their
process trees and get no record, and :class:`~wnbench.suite.signals.Interrupted` propagates to the caller.
A full disk or an unwritable OUT -- met by the driver or by a run -- stops the suite the same way and raises
:class:`~wnbench.suite.store.StorageError` (one line: the path, what filled up, how to resume).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from wnbench.errors import UserError

from .executors import EXECUTORS
from .kinds import get_kind
from .progress import error_line, make_progress, print_summary
from .signals import deferred, interrupts_stop_the_suite
from .spec import Suite
from .store import (
    StorageError,
    atomic_write_json,
    is_done,
    iter_records,
    read_record,
    storage_problem,
    write_record,
)
from .tuning import add_tuned_runs

__all__ = ["SuiteResult", "plan", "run_suite", "status_of"]


@dataclass
class SuiteResult:
    """What one invocation did: records it wrote, runs it skipped."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    wall_s: float = 0.0
    left: int = 0  # runs not started because the start deadline (--stop-after) passed

    @property
    def counts(self) -> Counter[str]:
        return Counter(r["status"] for r in self.records)

    @property
    def exit_code(self) -> int:
        """1 when any run failed or timed out (diverged is a result, not a failure), else 0."""
        return 1 if self.counts["failed"] or self.counts["timeout"] else 0


def plan(suite: Suite, out_dir: str | Path) -> list[tuple[Any, dict[str, Any] | None]]:
    """Each run of the suite with its stored record (``None`` when it has none). Tuning stages whose tuning runs
    are stored in ``out_dir`` are decided first, so their evaluation runs are in ``suite.runs`` and listed too."""
    add_tuned_runs(suite, out_dir)
    return [(run, read_record(out_dir, run.run_id)) for run in suite.runs]


def _write_manifest(suite: Suite, out_dir: Path) -> None:
    manifest = {
        "suite": suite.name,
        "profile": suite.profile,
        "path": str(suite.path),
        "claims": list(suite.claims),
        "run_ids": [r.run_id for r in suite.runs],
    }
    atomic_write_json(out_dir / "suite.json", manifest, indent=1)


def _lock_out_dir(out_dir: Path) -> IO[str]:
    """Hold ``OUT/.lock`` so that two suites never run into one folder at once (the kernel frees it on any exit)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    handle = open(out_dir / ".lock", "w")  # noqa: SIM115 - held until the suite ends
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        handle.close()
        raise UserError(
            f"{out_dir} is in use by another `wnbench run`; wait for it or choose another --out"
        ) from err
    return handle


def run_suite(
    suite: Suite,
    out_dir: str | Path,
    *,
    executor: str = "local",
    workers: int | None = None,
    tracking: Any = None,
    rich: bool | None = None,
    summary: bool = True,
    start_until: float | None = None,
) -> SuiteResult:
    """Execute the suite's runs that have no finished/diverged record; return what happened.

    ``start_until`` (a ``time.time()`` value, the CLI's ``--stop-after``): start no run after it, let the runs in
    flight finish, and leave the rest for the next invocation (``SuiteResult.left``). Local executor only.

    Raises :class:`~wnbench.suite.signals.Interrupted` on SIGTERM/SIGHUP/SIGINT after stopping in-flight runs,
    :class:`~wnbench.suite.store.StorageError` when OUT is full or cannot be written.
    """
    from wnbench.tracking import TrackingOptions, arm_breaker

    if executor not in EXECUTORS:
        raise UserError(f"unknown executor '{executor}'; known: {', '.join(EXECUTORS)}")
    if start_until is not None and executor != "local":
        raise UserError(
            f"--stop-after: works with the local executor only (Ray is handed every run at once), not '{executor}'"
        )
    out_dir = Path(out_dir)
    tracking = arm_breaker(tracking or TrackingOptions(mode="disabled"))  # one W&B circuit breaker per call
    result = SuiteResult()
    try:
        result = _run_locked(suite, out_dir, executor, workers, tracking, rich, summary, result, start_until)
    except OSError as err:
        problem = storage_problem(err, out_dir)
        if problem is None:
            raise
        raise StorageError(_stopped(problem, suite, result)) from None
    if add_tuned_runs(suite, out_dir) and not (start_until is not None and time.time() >= start_until):
        # a tuning stage finished just now: run its chosen settings
        more = run_suite(suite, out_dir, executor=executor, workers=workers, tracking=tracking, rich=rich,
                         summary=summary, start_until=start_until)  # fmt: skip
        result.records += more.records
        result.wall_s += more.wall_s
        result.left = more.left
    return result


def _stopped(problem: str, suite: Suite, result: SuiteResult) -> str:
    """The one line for a suite stopped by its storage: what happened, what is stored, how to resume."""
    stored = result.skipped + sum(1 for r in result.records if is_done(r))
    return f"{problem}, then rerun the same command to resume ({stored} of {len(suite.runs)} runs are stored)"


def _run_locked(
    suite: Suite,
    out_dir: Path,
    executor: str,
    workers: int | None,
    tracking: Any,
    rich: bool | None,
    summary: bool,
    result: SuiteResult,
    start_until: float | None = None,
) -> SuiteResult:
    """Body of :func:`run_suite`, holding ``OUT/.lock``; fills in ``result`` as runs complete."""
    from wnbench.tracking import PRELOAD_MODULES, breaker_notice, prepare

    lock = _lock_out_dir(out_dir)
    try:
        with interrupts_stop_the_suite():
            # plan() adds the evaluation runs of tuning stages an earlier invocation finished (wnbench.suite.tuning)
            todo = [run for run, record in plan(suite, out_dir) if not is_done(record)]
            result.skipped = len(suite.runs) - len(todo)
            _write_manifest(suite, out_dir)
            preload = [m for kind in suite.kinds for m in get_kind(kind).module_names()]
            if tracking.mode != "disabled":
                # W&B's imports, paid once in the forkserver instead of in every run
                preload += PRELOAD_MODULES
                if todo and executor == "local":
                    prepare(tracking)  # one W&B service for all run processes
            progress = make_progress(len(todo), result.skipped, rich=rich)
            started = time.time()
            runner = EXECUTORS[executor](
                todo, out_dir, tracking, workers=workers, preload=preload, on_start=progress.started,
                start_until=start_until,
            )  # fmt: skip
            # closing(): on a stop signal the executor kills its in-flight runs now, not at garbage collection.
            breaker_shown = False
            with progress, contextlib.closing(runner):
                for run, record in runner:
                    if record.get("storage_error"):  # the run met a full disk: no record, rerun on resume
                        raise StorageError(_stopped(record["storage_error"], suite, result))
                    with deferred():  # a record is written whole and counted, or not at all
                        write_record(out_dir, record)
                        result.records.append(record)
                    progress.finished(run, record)
                    if not breaker_shown and (notice := breaker_notice(tracking)):
                        print(notice, file=sys.stderr, flush=True)
                        breaker_shown = True
            result.wall_s = time.time() - started
            result.left = len(todo) - len(result.records)
            if summary:
                _print_summary(suite, result)
    finally:
        lock.close()
    return result


def _print_summary(suite: Suite, result: SuiteResult) -> None:
    print_summary(result.records, title=f"suite {suite.name} / {suite.profile}", skipped=result.skipped)
    if result.records:
        busy = sum(r.get("wall_time_s") or 0.0 for r in result.records)
        print(
            f"{len(result.records)} runs in {result.wall_s:.1f} s wall; their own time adds up to {busy:.1f} s "
            f"({busy / max(result.wall_s, 1e-9):.2f} runs in parallel on average)"
        )
    if result.left:
        print(
            f"--stop-after: {result.left} runs not started (the deadline passed); rerun the same command to run them"
        )


def status_of(out_dir: str | Path) -> dict[str, Any]:
    """Counts by status over ``OUT``'s records (plus runs of the last suite with no record) and each failure."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise UserError(f"no results folder at {out_dir}")
    records = list(iter_records(out_dir))
    counts = Counter(r.get("status") for r in records)
    manifest_path = out_dir / "suite.json"
    if manifest_path.is_file():
        try:
            run_ids = json.loads(manifest_path.read_bytes().decode("utf-8"))["run_ids"]
        except (OSError, ValueError, TypeError, KeyError):  # a damaged manifest: no pending count
            run_ids = []
        have = {r.get("run_id") for r in records}
        counts["pending"] = sum(1 for run_id in run_ids if run_id not in have)
    failures = [
        {
            "run_id": r.get("run_id", "?"),
            "label": r.get("label", ""),
            "status": r["status"],
            "error": error_line(r),
        }
        for r in records
        if r.get("status") in ("failed", "timeout")
    ]
    return {"counts": dict(counts), "failures": failures, "total": len(records)}
