"""Published records: one compressed archive per suite, ``DEST/<suite>.jsonl.gz``, committed with its plan,
``DEST/<suite>.plan.json`` (``wnbench publish``; ``wnbench report`` and ``wnbench verify`` read them).

Integrity: the plan records the archive's record count and the sha256 of its *uncompressed* JSON lines
(``plan["archive"]``). The digest is of the content, not of the gzip bytes, so it names the records whatever zlib
compressed them (another zlib build or level gives other bytes for the same records); damage to the compressed
bytes is caught all the same, by gzip's own CRC-32 and length trailer or by the digest after decompression. Every
reader checks it: a damaged archive is an error (exit 2) naming the file and how to recover, never a partial result.
A plan written before digests existed is "unsealed": readers check that it decompresses and parses, ``wnbench
publish`` seals it when it next writes the archive, ``wnbench verify --seal`` seals it in place.

Concurrency: a publish takes ``DEST/.publish.lock`` (see :mod:`wnbench.suite.publish_lock`), reads the archive
under it, merges, and replaces archive and plan from unique temp files, so publishers running at once give the
union of their records. An archive that cannot be read is never overwritten.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wnbench.errors import UserError
from wnbench.suite.publish_lock import DEFAULT_LOCK_TIMEOUT_S, publish_lock
from wnbench.suite.store import (
    _UMASK,
    _load,
    atomic_write_json,
    is_done,
    iter_records,
    read_record,
    write_record,
)
from wnbench.suite.thumbnails import publish_thumbnails, restore_thumbnail

__all__ = [
    "ARCHIVE_SUFFIX",
    "INTEGRITY_KEY",
    "PLAN_SUFFIX",
    "Archive",
    "ArchiveError",
    "export_published",
    "find_archives",
    "import_published",
    "plan_path_of",
    "read_archive",
    "seal_archive",
]

ARCHIVE_SUFFIX = ".jsonl.gz"
PLAN_SUFFIX = ".plan.json"
#: The plan's integrity field: ``{"records": n, "sha256": hex, "digest": DIGEST_OF}``.
INTEGRITY_KEY = "archive"
DIGEST_OF = "sha256 of the uncompressed JSON lines"


class ArchiveError(UserError):
    """A published archive (or its plan) is damaged or does not match its plan: exit 2, with how to recover."""

    def __init__(self, message: str, archive: Path) -> None:
        super().__init__(message, recovery_hints(archive))
        self.archive = archive


def plan_path_of(archive: Path) -> Path:
    """``DEST/<suite>.plan.json`` for ``DEST/<suite>.jsonl.gz``."""
    return archive.with_name(archive.name.removesuffix(ARCHIVE_SUFFIX) + PLAN_SUFFIX)


def _archive_path_of(plan: Path) -> Path:
    return plan.with_name(plan.name.removesuffix(PLAN_SUFFIX) + ARCHIVE_SUFFIX)


def recovery_hints(*archives: Path) -> list[str]:
    """How to get damaged archives back: from git, or by publishing them again from the run folders."""
    files = " ".join(str(p) for a in archives for p in (a, plan_path_of(a)))
    folders = " or ".join(sorted({str(a.parent) for a in archives}))
    return [
        f"restore from git: git checkout -- {files}",
        "or, if your run folders (wnbench run --out) hold every record, move the damaged files aside and publish "
        f"again: wnbench publish OUT... --to {folders}",
    ]


def _damaged(archive: Path, what: str) -> ArchiveError:
    return ArchiveError(f"{archive}: damaged published archive: {what}", archive)


@dataclass
class Archive:
    """A published archive read whole and checked against its plan."""

    path: Path
    plan: dict[str, Any] | None  # None: no plan beside the archive
    records: list[dict[str, Any]] = field(default_factory=list)
    sha256: str = ""
    sealed: bool = False  # the plan records a count and digest (and they matched)

    @property
    def count(self) -> int:
        return len(self.records)


def _read_plan(plan_path: Path) -> dict[str, Any] | None:
    """The plan beside an archive, ``None`` when there is none; an unreadable plan is an :class:`ArchiveError`."""
    if not plan_path.exists():
        return None
    try:
        plan = _load(plan_path)
    except (OSError, ValueError) as err:
        raise ArchiveError(f"{plan_path}: damaged plan ({err})", _archive_path_of(plan_path)) from err
    if not isinstance(plan, dict):
        raise ArchiveError(f"{plan_path}: damaged plan (not a JSON object)", _archive_path_of(plan_path))
    return plan


def _integrity(plan: Mapping[str, Any] | None, plan_path: Path) -> tuple[int, str] | None:
    """The plan's recorded (count, sha256), or ``None`` when it has none (an unsealed, pre-digest plan)."""
    if plan is None or INTEGRITY_KEY not in plan:
        return None
    seal = plan[INTEGRITY_KEY]
    if not (
        isinstance(seal, dict)
        and isinstance(seal.get("records"), int)
        and isinstance(seal.get("sha256"), str)
    ):
        raise ArchiveError(
            f"{plan_path}: damaged plan ('{INTEGRITY_KEY}' must be {{records: int, sha256: str}}, not {seal!r})",
            _archive_path_of(plan_path),
        )
    return seal["records"], seal["sha256"]


def _decompress(path: Path) -> bytes:
    try:
        return gzip.decompress(path.read_bytes())
    except FileNotFoundError as err:
        raise _damaged(path, "the file is missing but its plan records it") from err
    except EOFError as err:
        raise _damaged(path, f"truncated ({err})") from err
    except (OSError, zlib.error) as err:  # BadGzipFile (an OSError): not gzip, or a CRC/length mismatch
        raise _damaged(path, f"not a readable gzip file ({err})") from err


def _parse(path: Path, content: bytes) -> list[dict[str, Any]]:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _damaged(path, f"not UTF-8 ({err})") from err
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise _damaged(path, f"line {number} is not JSON ({err})") from err
    return records


def read_archive(path: str | Path) -> Archive:
    """Read ``<suite>.jsonl.gz`` whole and check it against the count and digest its plan records.

    Raises :class:`ArchiveError` (exit 2, naming the file and how to recover) when it is missing, truncated,
    corrupt, or differs from its plan. An unsealed plan (no digest) is checked only for being readable.
    """
    path = Path(path)
    plan_path = plan_path_of(path)
    plan = _read_plan(plan_path)
    expected = _integrity(plan, plan_path)
    content = _decompress(path)
    digest = hashlib.sha256(content).hexdigest()
    records = _parse(path, content)
    if expected is not None:
        count, sha = expected
        problems = []
        if len(records) != count:
            problems.append(f"{len(records)} records where its plan ({plan_path.name}) records {count}")
        if digest != sha:
            problems.append(
                f"content sha256 {digest[:12]}... where its plan ({plan_path.name}) records {sha[:12]}..."
            )
        if problems:
            raise _damaged(path, "; ".join(problems))
    return Archive(path, plan, records, digest, sealed=expected is not None)


def find_archives(folder: str | Path) -> list[Path]:
    """The archives of a published folder: every ``*.jsonl.gz``, and the archive every ``*.plan.json`` that records
    one names (so a deleted archive is noticed, not skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = set(folder.glob(f"*{ARCHIVE_SUFFIX}"))
    for plan_path in folder.glob(f"*{PLAN_SUFFIX}"):
        try:
            sealed = INTEGRITY_KEY in (_load(plan_path) or {})
        except (OSError, ValueError, TypeError):
            sealed = True  # a damaged plan: read_archive names it
        if sealed:
            found.add(_archive_path_of(plan_path))
    return sorted(found)


def _seal(count: int, sha256: str) -> dict[str, Any]:
    return {"records": count, "sha256": sha256, "digest": DIGEST_OF}


def seal_archive(path: str | Path, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> bool:
    """Record the count and digest of an unsealed archive in its plan (``wnbench verify --seal``), under the publish
    lock. A sealed archive is only checked: a digest once recorded is never rewritten. Returns whether it sealed."""
    path = Path(path)
    with publish_lock(path.parent, timeout_s=lock_timeout_s) as lock:
        archive = read_archive(path)
        if archive.sealed:
            return False
        if archive.plan is None:
            raise UserError(f"{path}: no plan beside it ({plan_path_of(path).name}); cannot seal it")
        lock.check_held()
        atomic_write_json(
            plan_path_of(path), {**archive.plan, INTEGRITY_KEY: _seal(archive.count, archive.sha256)}, indent=1,
            sort_keys=True,
        )  # fmt: skip
    return True


# -- writing: wnbench publish ----------------------------------------------------------------------------------------
def _current_run_ids(plan: dict[str, Any], records: Mapping[str, dict[str, Any]]) -> set[str] | None:
    """The run ids the plan's profiles have *now* (suite file and configs as they are), the evaluation runs their
    tuning stages chose from ``records`` (run id -> record) included, or ``None`` when the suite file cannot be
    read from here (then the plan's ids stand)."""
    from wnbench.suite.spec import load_suite
    from wnbench.suite.tuning import add_tuned_runs

    path = Path(str(plan.get("path", "")))
    if not path.is_file():
        return None
    ids: set[str] = set()
    for profile in plan.get("profiles") or [plan.get("profile")]:
        try:
            suite = load_suite(path, profile, run_kind_checks=False)
            add_tuned_runs(suite, None, lookup=records.get)
            ids |= {run.run_id for run in suite.runs}
        except Exception:  # noqa: BLE001 - a profile since renamed: keep what the plan says
            return None
    return ids


def _merge(
    plan: dict[str, Any], earlier: Archive | None, new: Iterable[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The plan and records to publish: what ``earlier`` holds, updated by ``new`` (by run id), the plans' run ids
    and profiles united, then only the runs the suite plans now."""
    merged = {r["run_id"]: r for r in earlier.records} if earlier is not None else {}
    merged.update({r["run_id"]: _thin_curves(r) for r in new})
    plan = {k: v for k, v in plan.items() if k != INTEGRITY_KEY}
    if (
        earlier is not None and earlier.plan is not None
    ):  # the union of the plans so far (baseline, then paper)
        plan["run_ids"] = sorted(set(earlier.plan.get("run_ids", [])) | set(plan.get("run_ids", [])))
        plan["profiles"] = sorted(
            set(earlier.plan.get("profiles", [earlier.plan.get("profile")])) | {plan.get("profile")}
        )
    current = _current_run_ids(plan, merged)
    if (
        current is not None
    ):  # a record whose config has changed since (a new zoo value) is no longer a planned run
        plan["run_ids"] = sorted(current)
        merged = {k: r for k, r in merged.items() if k in current}
    return plan, merged


def _published_so_far(records_path: Path, plan_path: Path) -> Archive | None:
    """What DEST holds for the suite, checked (:func:`read_archive`); ``None`` when nothing. An unsealed plan alone
    (an old publish whose archive was never written) is kept for its run ids; a sealed one needs its archive."""
    if records_path.exists():
        return read_archive(records_path)
    plan = _read_plan(plan_path)
    if plan is None:
        return None
    if _integrity(plan, plan_path) is not None:
        return read_archive(records_path)  # raises: the archive its plan records is missing
    return Archive(records_path, plan)


def _write_archive(
    records_path: Path, plan_path: Path, plan: dict[str, Any], lines: bytes, check_held: Any
) -> None:
    """Archive, then plan (with the archive's count and digest), each from a unique temp file beside it; the lock is
    confirmed still held just before the archive is replaced."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{records_path.name}-", suffix=".tmp", dir=records_path.parent)
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
                gz.write(lines)
            raw.flush()
            os.fsync(raw.fileno())
        check_held()
        os.replace(tmp, records_path)
        tmp = None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    atomic_write_json(plan_path, plan, indent=1, sort_keys=True)


def export_published(
    out_dir: str | Path, dest_dir: str | Path, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
) -> tuple[Path, Path, int]:
    """Write ``OUT``'s finished and diverged records to ``DEST/<suite>.jsonl.gz`` (one record per line, run-id
    order, gzip without a timestamp so the same records give the same bytes) and its plan, with their count and
    digest, to ``DEST/<suite>.plan.json``. Records already published for that suite are kept (merged by run id,
    read under ``DEST``'s publish lock), so records published in several sessions, or by publishers running at
    once, accumulate. A published archive that cannot be read, or differs from its plan, is an
    :class:`ArchiveError` and nothing is written. Per-update log curves are thinned to
    :data:`PUBLISHED_CURVE_POINTS` points; evaluation and diagnostic curves are kept whole. Returns both paths and
    the number of records. Generative cells also get their lowest seed's sample thumbnail in ``DEST/<suite>.samples/``
    (wnbench.suite.thumbnails)."""
    out_dir, dest_dir = Path(out_dir), Path(dest_dir)
    plan = _load(out_dir / "suite.json")
    suite = plan["suite"]
    records_path, plan_path = dest_dir / f"{suite}{ARCHIVE_SUFFIX}", dest_dir / f"{suite}{PLAN_SUFFIX}"
    new = [r for r in iter_records(out_dir) if is_done(r)]  # read before the lock: it is OUT's, not DEST's
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--to {dest_dir}: cannot create that folder ({err.strerror})") from err
    with publish_lock(dest_dir, timeout_s=lock_timeout_s) as lock:
        try:
            earlier = _published_so_far(records_path, plan_path)
        except ArchiveError as err:  # never overwrite what cannot be read: the records in it would be lost
            raise ArchiveError(f"{err}; nothing was published", err.archive) from err
        plan, merged = _merge(plan, earlier, new)
        lines = "".join(json.dumps(merged[k], sort_keys=True, allow_nan=False) + "\n" for k in sorted(merged))
        content = lines.encode("utf-8")
        plan[INTEGRITY_KEY] = _seal(len(merged), hashlib.sha256(content).hexdigest())
        _write_archive(records_path, plan_path, plan, content, lock.check_held)
        publish_thumbnails(out_dir, records_path, merged.values())
    return records_path, plan_path, len(merged)


#: Curves kept whole in published records (what the report reads); every other curve (SB3's and Lightning's
#: per-update logs, which W&B and the local records keep whole) is thinned to at most this many evenly spaced points.
PUBLISHED_FULL_CURVES = ("eval/", "diag/", "val/", "test/")
PUBLISHED_CURVE_POINTS = 48


def _thin_curves(record: dict[str, Any]) -> dict[str, Any]:
    curves = {}
    for name, curve in (record.get("curves") or {}).items():
        steps, values = curve.get("step", []), curve.get("value", [])
        if name.startswith(PUBLISHED_FULL_CURVES) or len(steps) <= PUBLISHED_CURVE_POINTS:
            curves[name] = curve
            continue
        last = len(steps) - 1
        keep = sorted({round(i * last / (PUBLISHED_CURVE_POINTS - 1)) for i in range(PUBLISHED_CURVE_POINTS)})
        curves[name] = {**curve, "step": [steps[i] for i in keep], "value": [values[i] for i in keep]}
    return {**record, "curves": curves}


def import_published(records_path: str | Path, out_dir: str | Path) -> int:
    """Unpack ``<suite>.jsonl.gz`` (checked against its plan) and the plan beside it into ``OUT/runs/*/record.json``
    and ``OUT/suite.json``, so ``wnbench run`` resumes from them and ``wnbench report`` reads them; published sample
    thumbnails become their runs' ``samples.png`` where a run has none, so a later publish keeps them. Records already
    in ``OUT`` are left as they are. Returns the number of records written."""
    archive = read_archive(records_path)
    written = 0
    for record in archive.records:
        if read_record(out_dir, record["run_id"]) is None:
            write_record(out_dir, record)
            written += 1
        restore_thumbnail(archive.path, record["run_id"], out_dir)
    if archive.plan is not None and not (Path(out_dir) / "suite.json").exists():
        manifest = {k: v for k, v in archive.plan.items() if k != INTEGRITY_KEY}
        atomic_write_json(Path(out_dir) / "suite.json", manifest, indent=1)
    return written
