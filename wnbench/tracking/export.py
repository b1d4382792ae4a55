"""Run records as W&B runs (``wnbench wandb-export``): the published reference viewable beside your own runs.

    records = load_records("results/published")          # published folder, one archive, or a run folder
    result = export_records(records, out_dir="wandb-ref", project="wnbench")
    print(result.sync_command)                            # wandb sync wandb-ref/wandb/offline-run-*

Each record becomes one offline W&B run that looks like the live run that produced it: the same config
(``run_id``, ``suite``, ``claims`` and the record's config), group = suite, job type = the claims joined by ``+``,
the live run's tags plus ``reference``, ``suite:<suite>``, ``profile:<profile>`` (archives) and ``status:<status>``,
name ``task/algo/norm/s<seed>``, the final metrics as summary, and every curve at its own steps. Curves are logged
the way a live run logs them (one row per step, each row holding the curves that have a point there, at W&B step
= that step) and each curve ``M`` also gets its own step key ``step/M`` (``define_metric(M, step_metric=...)``),
so curves on different step grids never share x values they do not have.

Idempotent: the run id is ``<namespace>-<record run_id>`` (``ref-...``). A finished export is listed in
``DIR/wandb/wnbench-export.jsonl``; exporting again skips every run listed there whose folder still exists and
rewrites (after removing its partial folder) any run an interrupted export left unlisted. Runs are written by one
process (or a small pool, ``workers``), each reusing one W&B service across its runs (``reinit="create_new"``, no system
metrics, console capture, git or code saving), which is what makes ~2,000 runs take minutes, not hours.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wnbench.errors import UserError
from wnbench.tracking import quiet_settings

__all__ = [
    "DEFAULT_NAMESPACE",
    "MANIFEST",
    "REFERENCE_TAG",
    "STEP_PREFIX",
    "ExportResult",
    "ExportRun",
    "export_records",
    "load_records",
    "run_config",
    "run_id_for",
    "run_rows",
    "run_tags",
]

#: Prefix of exported run ids: ``ref-<record run_id>``.
DEFAULT_NAMESPACE = "ref"
#: Tag every exported run carries: the report's reference run set selects on it.
REFERENCE_TAG = "reference"
#: Curve ``M``'s own step key is ``STEP_PREFIX + M`` (hidden in the W&B UI, used as its x axis).
STEP_PREFIX = "step/"
#: The list of finished exports, under ``DIR/wandb/``: one JSON line ``{"id", "dir"}`` per run.
MANIFEST = "wnbench-export.jsonl"


@dataclass(frozen=True)
class ExportRun:
    """One record to export and what the folder it came from says about it (the archive's profile)."""

    record: dict[str, Any]
    source: str  # the archive or record file it was read from
    profile: str | None = None


@dataclass
class ExportResult:
    """What an export did: runs written and skipped, seconds taken, where the runs are and how to upload them."""

    written: int
    skipped: int
    seconds: float
    wandb_dir: Path
    run_dirs: dict[str, Path] = field(default_factory=dict)  # run id -> offline run folder (written or kept)

    @property
    def runs_per_s(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    @property
    def sync_command(self) -> str:
        return f"wandb sync {self.wandb_dir}/offline-run-*"


# --------------------------------------------------------------------------------------------------- reading


def _plan_profile(plan: Mapping[str, Any] | None) -> str | None:
    profile = (plan or {}).get("profile")
    return str(profile) if profile else None


def load_records(path: str | os.PathLike) -> list[ExportRun]:
    """The records under ``path``: a published folder (its ``*.jsonl.gz``), one archive, or a run folder.

    Archives are read with their integrity check (count and sha256 of their plan); a missing path, a folder with
    no records, a damaged archive or an unreadable ``record.json`` is a :class:`UserError` naming the path.
    """
    from wnbench.suite.published import ARCHIVE_SUFFIX, find_archives, read_archive
    from wnbench.suite.store import iter_record_files

    root = Path(path)
    if not root.exists():
        raise UserError(
            f"{root}: no such file or folder (expected a published folder, an archive or a run folder)"
        )
    runs: list[ExportRun] = []
    if root.is_file():
        if not root.name.endswith(ARCHIVE_SUFFIX):
            raise UserError(f"{root}: not a published archive (*{ARCHIVE_SUFFIX})")
        archives = [root]
    else:
        archives = find_archives(root)
    for archive_path in archives:
        archive = read_archive(archive_path)  # ArchiveError (a UserError) on any damage
        profile = _plan_profile(archive.plan)
        runs.extend(ExportRun(r, str(archive_path), profile) for r in archive.records if isinstance(r, dict))
    if root.is_dir():
        for record_file, record in iter_record_files(root):
            if isinstance(record, Exception):
                raise UserError(f"{record_file}: unreadable run record ({record})")
            runs.append(ExportRun(record, str(record_file)))
    if not runs:
        raise UserError(
            f"{root}: no run records found (expected *{ARCHIVE_SUFFIX} archives or runs/*/record.json)"
        )
    for run in runs:
        if not run.record.get("run_id") or not isinstance(run.record.get("config"), dict):
            raise UserError(f"{run.source}: a record without run_id or config ({str(run.record)[:80]}...)")
    return runs


# ----------------------------------------------------------------------------------------- one record's run


def run_id_for(record: Mapping[str, Any], namespace: str = DEFAULT_NAMESPACE) -> str:
    """The W&B run id of a record's export: stable, so exporting twice names the same run."""
    return f"{namespace}-{record['run_id']}"


def run_config(record: Mapping[str, Any]) -> dict[str, Any]:
    """The W&B config a live run of this record logged (``wnbench.suite.worker.execute_run``): same keys."""
    return {
        "run_id": record["run_id"],
        "suite": record.get("suite"),
        "claims": list(record.get("claims") or []),
        **record["config"],
    }


def run_name(record: Mapping[str, Any]) -> str:
    """``task/algo/norm/s<seed>``, the live run's name."""
    config = record["config"]
    return f"{config.get('task')}/{config.get('algo')}/{config.get('norm')}/s{config.get('seed')}"


def run_tags(record: Mapping[str, Any], profile: str | None = None) -> list[str]:
    """The live run's tags (norm, task, algo, kind) plus ``reference``, suite, profile and status."""
    config = record["config"]
    tags = [
        REFERENCE_TAG,
        f"norm:{config.get('norm')}",
        f"task:{config.get('task')}",
        f"algo:{config.get('algo')}",
        f"kind:{config.get('kind')}",
        f"suite:{record.get('suite')}",
        f"status:{record.get('status')}",
    ]
    if profile:
        tags.append(f"profile:{profile}")
    return [t[:64] for t in tags]


def run_rows(curves: Mapping[str, Mapping[str, Sequence[Any]]]) -> list[tuple[int, dict[str, Any]]]:
    """``(step, row)`` in increasing step: each row holds every curve with a point at that step, and its step key.

    A curve is ``{"step": [...], "value": [...]}``; a curve whose step and value lists differ in length is cut to
    the shorter (as W&B would drop the unpaired points); non-numeric values (``None``) are left out.
    """
    rows: dict[int, dict[str, Any]] = {}
    for metric, curve in curves.items():
        steps, values = curve.get("step") or [], curve.get("value") or []
        for step, value in zip(steps, values, strict=False):
            if value is None or step is None:
                continue
            row = rows.setdefault(int(step), {})
            row[metric] = value
            row[STEP_PREFIX + metric] = int(step)
    return sorted(rows.items())


def _summary(record: Mapping[str, Any]) -> dict[str, Any]:
    summary = {k: v for k, v in (record.get("metrics") or {}).items() if v is not None}
    if record.get("diverged_at_step") is not None:
        summary["diverged_at_step"] = record["diverged_at_step"]
    summary["status"] = record.get("status")
    if record.get("wall_time_s") is not None:
        summary["wall_time_s"] = record["wall_time_s"]
    return summary


def _write_run(job: dict[str, Any]) -> tuple[str, str, str | None]:
    """Write one record as an offline run (in a worker process); ``(id, run folder, error or None)``."""
    import wandb

    record, run_id = job["record"], job["id"]
    try:
        run = wandb.init(
            project=job["project"],
            entity=job["entity"],
            id=run_id,
            name=run_name(record),
            group=record.get("suite"),
            job_type="+".join(record.get("claims") or []) or None,
            tags=run_tags(record, job["profile"]),
            config=run_config(record),
            dir=job["dir"],
            mode="offline",
            settings=quiet_settings(init_timeout=60.0),
            reinit="create_new",
        )
        curves = record.get("curves") or {}
        for metric in curves:
            run.define_metric(STEP_PREFIX + metric, hidden=True)
            run.define_metric(metric, step_metric=STEP_PREFIX + metric)
        for step, row in run_rows(curves):
            run.log(row, step=step)
        run.summary.update(_summary(record))
        run_dir = str(Path(run.dir).parent)  # run.dir is .../offline-run-*/files
        run.finish(exit_code=0 if record.get("status") in ("finished", "diverged") else 1)
        return run_id, run_dir, None
    except Exception as err:  # noqa: BLE001 - reported per run by the driver, which exits non-zero
        return run_id, "", f"{type(err).__name__}: {err}"


def _worker_init() -> None:
    import wandb

    wandb.setup()  # one service per worker, shared by all its runs


# ------------------------------------------------------------------------------------------------ the export


def _manifest(wandb_dir: Path) -> dict[str, Path]:
    """Run id -> folder of the runs a previous export finished (and whose folder is still there)."""
    done: dict[str, Path] = {}
    path = wandb_dir / MANIFEST
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
            folder = Path(entry["dir"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by an interrupted write: its run is written again
        if (folder / f"run-{entry['id']}.wandb").exists():
            done[entry["id"]] = folder
    return done


def _remove_partial(wandb_dir: Path, run_id: str) -> None:
    """Remove folders an interrupted export left for ``run_id`` (listed in no manifest), so only one remains."""
    for folder in wandb_dir.glob(f"offline-run-*-{run_id}"):
        shutil.rmtree(folder, ignore_errors=True)


def _results(jobs: list[dict[str, Any]], workers: int) -> Iterator[tuple[str, str, str | None]]:
    if workers <= 1:
        _worker_init()
        yield from map(_write_run, jobs)
        return
    context = multiprocessing.get_context("spawn")  # wandb's service threads do not survive fork
    with context.Pool(workers, initializer=_worker_init) as pool:
        yield from pool.imap_unordered(_write_run, jobs, chunksize=4)


def export_records(
    runs: Iterable[ExportRun],
    *,
    out_dir: str | os.PathLike,
    project: str = "wnbench",
    entity: str | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Write every record as an offline W&B run under ``out_dir/wandb/``; skip runs a previous export finished.

    ``workers`` processes write runs (1: this one; on a loaded 2-core machine 2 were no faster).
    ``progress(done, total)`` is called after each run. Raises :class:`UserError` when a run cannot be written
    (after writing the others), naming the record.
    """
    started = time.monotonic()
    out = Path(out_dir).absolute()
    wandb_dir = out / "wandb"
    try:
        wandb_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{out}: cannot write the W&B runs here ({err.strerror or err})") from err
    done = _manifest(wandb_dir)
    jobs, skipped, seen = [], 0, set()
    result = ExportResult(0, 0, 0.0, wandb_dir)
    for run in runs:
        run_id = run_id_for(run.record, namespace)
        if run_id in seen:
            continue  # the same record in two inputs: one run
        seen.add(run_id)
        if run_id in done:
            skipped += 1
            result.run_dirs[run_id] = done[run_id]
            continue
        _remove_partial(wandb_dir, run_id)
        jobs.append(
            dict(
                record=run.record,
                id=run_id,
                profile=run.profile,
                project=project,
                entity=entity,
                dir=str(out),
            )
        )
    failures: list[str] = []
    if progress:
        progress(0, len(jobs))
    with (wandb_dir / MANIFEST).open("a") as manifest:
        for count, (run_id, run_dir, error) in enumerate(_results(jobs, workers), 1):
            if error is None:
                manifest.write(json.dumps({"id": run_id, "dir": run_dir}) + "\n")
                manifest.flush()
                result.run_dirs[run_id] = Path(run_dir)
                result.written += 1
            else:
                failures.append(f"{run_id}: {error}")
            if progress:
                progress(count, len(jobs))
    result.skipped = skipped
    result.seconds = time.monotonic() - started
    if failures:
        raise UserError(
            f"{len(failures)} of {len(jobs)} runs could not be written (the others were): "
            + "; ".join(failures[:5])
        )
    return result
