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

A full disk (or a quota, a read-only or forbidden OUT) is not a run's failure: :func:`storage_problem` names it,
the engine stops the suite with one line (:class:`StorageError`, exit 2) and writes no record for the runs it
hit, so the next ``wnbench run`` -- once there is space -- resumes where it stopped. Records already written stay
whole (atomic writes; a temp file that could not be finished is removed).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wnbench.errors import UserError

__all__ = [
    "DONE_STATUSES",
    "STATUSES",
    "StorageError",
    "atomic_write_json",
    "is_done",
    "iter_record_files",
    "iter_records",
    "read_record",
    "record_path",
    "storage_problem",
    "versions",
    "write_record",
]

STATUSES = ("finished", "diverged", "failed", "timeout")
DONE_STATUSES = frozenset({"finished", "diverged"})
RECORD_SCHEMA = 1


def record_path(out_dir: str | Path, run_id: str) -> Path:
    return Path(out_dir) / "runs" / run_id / "record.json"


class StorageError(UserError):
    """OUT cannot take what the suite writes: a full disk, a quota, a read-only or forbidden folder (exit 2)."""


#: errno -> what went wrong, for the errors that mean "this folder cannot be written", not "this run is broken".
_STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a file is in the way (not a directory)",
}


def _mount_point(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - unreachable


def storage_problem(err: BaseException, out_dir: str | Path) -> str | None:
    """What stops OUT from being written, with the fix, when ``err`` (or an exception it came from) says so:
    ``"cannot write PATH: no space left on device (the file system at / has 0 B free); free some space"``.

    ``None`` for any other error. Permission and path errors count only for OUT, its parents and the paths under
    it (a run may legitimately be refused a file elsewhere); a full disk counts wherever it is met.
    """
    out = Path(out_dir).absolute()
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _STORAGE_ERRNOS:
            path = Path(os.fsdecode(err.filename)).absolute() if err.filename else None
            inside = path is not None and (path == out or out in path.parents or path in out.parents)
            if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) or inside:
                return f"cannot write {err.filename or out}: {_STORAGE_ERRNOS[err.errno]}{_why(err.errno, path or out)}"
        err = err.__cause__ or err.__context__
    return None


def _why(code: int, path: Path) -> str:
    """Which file system filled up (and how much is free now), or what to fix."""
    if code in (errno.ENOSPC, errno.EDQUOT):
        mount = _mount_point(path)
        try:
            free = _size(shutil.disk_usage(mount).free)
        except OSError:
            free = "?"
        return f" (the file system at {mount} has {free} free); free some space"
    if code == errno.EROFS:
        return f" (at {_mount_point(path)}); choose another --out"
    return "; make it writable or choose another --out"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_json(path: Path, data: Any, **dump_options: Any) -> None:
    """Write ``data`` as JSON to ``path`` whole or not at all: a temp file beside it, fsync, ``os.replace``.

    On any error the temp file is removed and the error (its ``filename`` set to ``path``) propagates.
    """
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
        os.fchmod(
            fd, 0o666 & ~_UMASK
        )  # mkstemp makes it 0600; a record is as readable as any file written here
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, **dump_options)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and not err.filename:
            err.filename = str(path)
        raise


def write_record(out_dir: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` atomically: a temp file in the same folder, fsync, then ``os.replace``."""
    path = record_path(out_dir, record["run_id"])
    atomic_write_json(path, record, indent=1, sort_keys=True, allow_nan=False)
    return path


def _load(path: Path) -> Any:
    """A JSON file's content; raises ``OSError`` or ``ValueError`` (bad JSON or not UTF-8)."""
    return json.loads(path.read_bytes().decode("utf-8"))


def read_record(out_dir: str | Path, run_id: str) -> dict[str, Any] | None:
    """The stored record of ``run_id``, or ``None`` when there is none (or it is unreadable: rerun it)."""
    try:
        record = _load(record_path(out_dir, run_id))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def iter_record_files(out_dir: str | Path) -> Iterator[tuple[Path, dict[str, Any] | Exception]]:
    """``(path, record)`` for every ``OUT/runs/*/record.json`` in run-id order; the error instead of the record
    when a file cannot be read or parsed, or holds no JSON object (the report names such files, resume reruns
    their runs)."""
    for path in sorted((Path(out_dir) / "runs").glob("*/record.json")):
        try:
            record = _load(path)
        except (OSError, ValueError) as err:  # ValueError: bad JSON (a half-written file) or not UTF-8
            yield path, err
            continue
        if isinstance(record, dict):
            yield path, record
        else:
            yield path, ValueError(f"not a run record (a JSON {type(record).__name__}, not an object)")


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


# -- published records live in wnbench.suite.published (which imports this module); the old names still work here
_PUBLISHED_NAMES = ("export_published", "import_published")


def __getattr__(name: str) -> Any:
    """``from wnbench.suite.store import export_published`` (the names' old home) without an import cycle."""
    if name in _PUBLISHED_NAMES:
        from wnbench.suite import published

        return getattr(published, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
