"""Executors: run a list of resolved runs, each in its own process, and hand back records as they complete.

``local`` keeps up to N run processes alive (N = CPU cores by default), each with one torch thread; a crash, OOM
kill or time-out ends only that run. ``ray`` submits one Ray task per run, reserving the run's ``budget.cpus`` and
``budget.gpus`` (joining ``RAY_ADDRESS`` when set, else starting a local Ray with ``num_cpus=N``); the task starts
the same :class:`RunProcess` on its node, so records are identical to the local executor's. The driver (:mod:`wnbench.suite.engine`) writes every record.

Ray notes: a run counts as "in flight" from its submission; on a multi-node cluster a run's artifacts
(``ctx.run_dir``) land on the node that ran it unless OUT is a shared file system, while its record always
comes back to the driver. A run whose Ray worker or node dies gets a ``failed`` record saying it was lost with
it (tasks are not retried in the same invocation, so a run is never half-done twice); the next ``wnbench run``
reruns it, like any failed run.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from wnbench.errors import UserError

from .signals import deferred
from .spec import ResolvedRun
from .worker import RunProcess, mp_context

__all__ = ["EXECUTORS", "run_local", "run_ray"]

OnStart = Callable[[ResolvedRun], None]


def default_workers() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run_local(
    runs: Sequence[ResolvedRun],
    out_dir: str | Path,
    tracking: Any,
    *,
    workers: int | None = None,
    preload: Sequence[str] = (),
    on_start: OnStart | None = None,
    start_until: float | None = None,
) -> Iterator[tuple[ResolvedRun, dict[str, Any]]]:
    """Yield ``(run, record)`` as runs complete, at most ``workers`` at a time.

    With ``start_until`` (a ``time.time()`` value), no run starts after that moment: the runs in flight finish and
    the rest are left pending, so a time-limited session or job ends with nothing in flight to lose.
    """
    workers = max(1, workers or default_workers())
    ctx = mp_context(list(preload))
    pending = list(runs)
    active: list[RunProcess] = []
    try:
        while pending or active:
            if pending and start_until is not None and time.time() >= start_until:
                pending.clear()  # past the start deadline: drain what is in flight, start nothing more
                if not active:
                    break
            while pending and len(active) < workers:
                with deferred():  # a stop signal here waits until the new process is on the list to kill
                    handle = RunProcess(pending.pop(0), out_dir, tracking, ctx)
                    active.append(handle)
                    handle.start()
                if on_start:
                    on_start(handle.run)
            soonest = min(h.deadline for h in active)
            wait(
                [w for h in active for w in h.waitables()], timeout=max(0.01, min(1.0, soonest - time.time()))
            )
            still = []
            for handle in active:
                record = handle.poll()
                if record is None:
                    still.append(handle)
                else:
                    yield handle.run, record
            active = still
    finally:
        for handle in active:  # interrupted (a stop signal, generator closed): leave no orphans behind
            handle.kill()


def _ray_task(run: ResolvedRun, out_dir: str, tracking: Any, preload: Sequence[str]) -> dict[str, Any]:
    """Body of one Ray task: the run in a child process of the Ray worker, same as the local executor."""
    handle = RunProcess(run, out_dir, tracking, mp_context(list(preload)))
    handle.start()
    return handle.wait()


def run_ray(
    runs: Sequence[ResolvedRun],
    out_dir: str | Path,
    tracking: Any,
    *,
    workers: int | None = None,
    preload: Sequence[str] = (),
    on_start: OnStart | None = None,
    start_until: float | None = None,
) -> Iterator[tuple[ResolvedRun, dict[str, Any]]]:
    """Yield ``(run, record)`` from Ray tasks: one per run, reserving the run's ``budget.cpus``/``budget.gpus``.

    Every task is submitted at once and Ray does not tell queued tasks from running ones, so ``start_until`` is
    refused (:func:`wnbench.suite.run_suite` checks it before anything starts).
    """
    try:
        import ray
    except ImportError as err:
        raise UserError("--executor ray needs Ray: pip install 'wnbench[ray]'") from err

    started_here = False
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(
                num_cpus=max(1, workers or default_workers()),
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        started_here = True
    from ray import exceptions as ray_errors

    # A task that died with its process or node, as opposed to one whose run raised (RayTaskError).
    LOST = (  # noqa: N806 - a constant, imported lazily with Ray
        ray_errors.NodeDiedError,
        ray_errors.WorkerCrashedError,
        ray_errors.LocalRayletDiedError,
        ray_errors.ObjectLostError,
        ray_errors.TaskUnschedulableError,
    )
    task = ray.remote(max_retries=0)(_ray_task)
    futures = {}
    collected: set[Any] = set()
    try:
        for run in runs:
            resources = {"num_cpus": run.budget.get("cpus", 1.0), "num_gpus": run.budget.get("gpus", 0.0)}
            futures[task.options(**resources).remote(run, str(out_dir), tracking, list(preload))] = run
            if on_start:
                on_start(run)
        remaining = list(futures)
        while remaining:
            # A timeout, so a stop signal is handled within a second even while every run is busy.
            done, remaining = ray.wait(remaining, num_returns=1, timeout=1.0)
            for ref in done:
                collected.add(ref)
                run = futures[ref]
                try:
                    record = ray.get(ref)
                except Exception as err:  # noqa: BLE001 - a lost worker/node fails that run only
                    handle = RunProcess(run, out_dir, tracking, mp_context())
                    handle.started = time.time()
                    lost = isinstance(err, LOST)
                    why = (
                        "lost with its Ray worker or node; rerun by the next `wnbench run`"
                        if lost
                        else "failed"
                    )
                    detail = next(iter(str(err).strip().splitlines()), "") if lost else str(err)
                    record = handle._failure("failed", f"Ray task {why}: {type(err).__name__}: {detail}")
                yield run, record
    finally:
        for ref in futures:  # interrupted: stop the tasks still running (their run processes die with them)
            if ref not in collected:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()


EXECUTORS = {"local": run_local, "ray": run_ray}
