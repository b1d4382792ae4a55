"""Run records on disk: ``OUT/runs/<run_id>/record.json``, written atomically, read by resume, status and reports.

Record fields: ``run_id``, ``suite``, ``claims``, ``status`` (finished | failed | diverged | timeout), ``config``
(kind, task, algo, norm, norm_spec, seed, params, budget, and ``resolved``: the kind's ``identity`` hook's result,
e.g. the hyperparameters after its config files, else null), ``metrics`` (final figures; non-finite -> null),
``curves`` (``{metric: {"step": [...], "value": [...]}}``), ``details`` (what the run put in ``ctx.details``),
``error`` (traceback / reason, else null), ``diverged_at_step``, ``wall_time_s``, ``timings`` (seconds:
``tracking_init_s``, ``run_s``, ``tracking_finish_s``, ``process_start_s``; CPU seconds of the run process:
``cpu_s`` = ``cpu_user_s`` + ``cpu_system_s``, ``children_cpu_s`` of its waited-for children, ``run_cpu_s`` inside
the kind's ``run``; a timed-out run has the CPU figures measured just before it was killed),
``started_at``/``finished_at`` (UTC ISO), ``versions``, ``host``, ``tracking`` (W&B mode, run id and dir, or its
error), ``schema`` (record format version).

Only the suite driver writes records. A run stopped by SIGTERM/SIGINT/SIGHUP, or in flight when the driver is
SIGKILLed, has no record (it is killed, see :mod:`wnbench.suite.worker`) and is rerun by the next ``wnbench run``.

Resume policy: ``finished`` and ``diverged`` are results and are never rerun; ``failed`` and ``timeout`` are
rerun by the next ``wnbench run`` (a crash or a slow machine may be transient; raise ``budget.time_limit_s`` with
``--set`` for a run that times out every time).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "DONE_STATUSES",
    "STATUSES",
    "is_done",
    "iter_record_files",
    "iter_records",
    "read_record",
    "record_path",
    "versions",
    "write_record",
]

STATUSES = ("finished", "diverged", "failed", "timeout")
DONE_STATUSES = frozenset({"finished", "diverged"})
RECORD_SCHEMA = 1


def record_path(out_dir: str | Path, run_id: str) -> Path:
    return Path(out_dir) / "runs" / run_id / "record.json"


def write_record(out_dir: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` atomically: a temp file in the same folder, fsync, then ``os.replace``."""
    path = record_path(out_dir, record["run_id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".record-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh, indent=1, sort_keys=True, allow_nan=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_record(out_dir: str | Path, run_id: str) -> dict[str, Any] | None:
    """The stored record of ``run_id``, or ``None`` when there is none (or it is unreadable)."""
    path = record_path(out_dir, run_id)
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, OSError):
        return None


def iter_record_files(out_dir: str | Path) -> Iterator[tuple[Path, dict[str, Any] | Exception]]:
    """``(path, record)`` for every ``OUT/runs/*/record.json`` in run-id order; the error instead of the record
    when a file cannot be read or parsed (the report names such files, resume skips them)."""
    for path in sorted((Path(out_dir) / "runs").glob("*/record.json")):
        try:
            yield path, json.loads(path.read_text())
        except (json.JSONDecodeError, OSError) as err:
            yield path, err


def iter_records(out_dir: str | Path) -> Iterator[dict[str, Any]]:
    """Every readable record under ``OUT/runs/``, in run-id order."""
    for _, record in iter_record_files(out_dir):
        if not isinstance(record, Exception):
            yield record


def is_done(record: dict[str, Any] | None) -> bool:
    """A stored result that resume keeps (finished or diverged)."""
    return record is not None and record.get("status") in DONE_STATUSES


def versions() -> dict[str, str | None]:
    """Versions of the libraries a result depends on, read from package metadata (imports nothing heavy)."""
    from importlib.metadata import PackageNotFoundError, version
    from platform import python_version

    out: dict[str, str | None] = {"python": python_version()}
    for dist in (
        "wnbench",
        "torch",
        "numpy",
        "stable-baselines3",
        "sb3-contrib",
        "lightning",
        "gymnasium",
        "wandb",
    ):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out
