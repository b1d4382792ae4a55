"""Reading what the suites and benchmarks stored: run records, suite manifests, benchmark JSON files.

``wnbench report`` takes directories. Each may be a suite output (``DIR/runs/*/record.json`` and the manifest
``DIR/suite.json``: only the runs its last ``wnbench run`` planned are reported, so records left by an earlier
configuration never mix with current ones), a benchmark output (``overhead.json``, ``noise.json``, ``ddi.json`` from ``wnbench bench``),
or a parent holding such directories one level down (``results/``). Nothing here trains or imports a run kind.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wnbench.errors import UserError
from wnbench.suite.cost import cell_name
from wnbench.suite.published import Archive, ArchiveError, find_archives, read_archive, recovery_hints
from wnbench.suite.store import RECORD_SCHEMA, STATUSES, iter_record_files
from wnbench.suite.thumbnails import published_thumbnails

BENCH_FILES = ("overhead.json", "noise.json", "ddi.json")
#: Status order when one run id appears in several directories: a result beats a failure.
_STATUS_RANK = {"finished": 0, "diverged": 1, "timeout": 2, "failed": 3}


@dataclass
class SuiteManifest:
    """What a suite's last invocation planned (``suite.json``), to count runs that have no record."""

    directory: Path
    suite: str
    profile: str
    claims: list[str]
    run_ids: list[str]


@dataclass
class Inputs:
    """Everything a report is built from."""

    records: list[dict[str, Any]] = field(default_factory=list)
    manifests: list[SuiteManifest] = field(default_factory=list)
    bench: dict[str, dict[str, Any]] = field(default_factory=dict)  # "overhead" -> {"meta":..., "rows":[...]}
    skipped: list[str] = field(default_factory=list)  # one line per record that could not be used
    warnings: list[str] = field(default_factory=list)  # usable but worth a reader's attention
    sources: list[Path] = field(default_factory=list)

    @property
    def record_ids(self) -> set[str]:
        return {r["run_id"] for r in self.records}

    def missing_by_suite(self) -> dict[str, int]:
        """Runs a suite planned that have no record (never run, or killed in flight)."""
        have = self.record_ids
        out: Counter[str] = Counter()
        for manifest in self.manifests:
            out[manifest.suite] += sum(1 for run_id in manifest.run_ids if run_id not in have)
        return dict(out)

    def compute(self) -> dict[str, dict[str, Any]]:
        """What the records cost, per suite: runs by status and CPU-hours (the run processes' own CPU time,
        ``timings.cpu_s``, summed over every record, failed ones too; ``wall_time_s`` where a record has no CPU
        time), planned runs without a record, and the same per cell (task/algo, with the budget's steps)."""
        out: dict[str, dict[str, Any]] = {}
        missing = self.missing_by_suite()
        for r in sorted(self.records, key=lambda r: (str(r.get("suite")), r["run_id"])):
            c = r.get("config") or {}
            suite = out.setdefault(
                str(r.get("suite")),
                {"runs": 0, "statuses": {}, "cpu_hours": 0.0, "missing": 0, "no_cpu_time": 0, "cells": {}},
            )
            cpu = (r.get("timings") or {}).get("cpu_s")
            if not isinstance(cpu, int | float):
                suite["no_cpu_time"] += 1
                cpu = r.get("wall_time_s") if isinstance(r.get("wall_time_s"), int | float) else 0.0
            steps = (c.get("budget") or {}).get("steps")
            cell = suite["cells"].setdefault(
                cell_name(c.get("task"), c.get("algo"), steps), {"runs": 0, "cpu_hours": 0.0}
            )
            for d in (suite, cell):
                d["runs"] += 1
                d["cpu_hours"] += float(cpu) / 3600.0
            suite["statuses"][r["status"]] = suite["statuses"].get(r["status"], 0) + 1
        for name, n in missing.items():
            out.setdefault(
                name,
                {"runs": 0, "statuses": {}, "cpu_hours": 0.0, "missing": 0, "no_cpu_time": 0, "cells": {}},
            )["missing"] = n
        return dict(sorted(out.items()))


def _is_suite_dir(path: Path) -> bool:
    return (path / "runs").is_dir() or (path / "suite.json").is_file()


def _published_files(path: Path) -> list[Path]:
    """``<suite>.jsonl.gz`` files of a published-records folder (``wnbench publish``), each with its plan (and the
    archive a sealed plan names when it is missing: reading it is then an error, not a silent gap)."""
    return find_archives(path)


#: ``results/published/pending/``: records of a learning-rate sweep or tuning stage still running (same format as
#: a published folder); a parent folder's report skips it, so half a sweep never makes a verdict.
PENDING = "pending"


def _is_bench_dir(path: Path) -> bool:
    return any((path / name).is_file() for name in BENCH_FILES)


def _expand(directories: Sequence[Path]) -> list[Path]:
    """The suite and benchmark directories among ``directories`` and their immediate children."""
    problems = [f"{d}: no such directory" for d in directories if not d.is_dir()]
    if problems:
        raise UserError("cannot read the report inputs", problems)
    found: list[Path] = []
    for directory in directories:
        if _is_suite_dir(directory) or _is_bench_dir(directory) or _published_files(directory):
            found.append(directory)
            continue
        found += [
            c
            for c in sorted(directory.iterdir())
            if c.is_dir()
            and c.name != PENDING  # unfinished stages: read only when named directly
            and (_is_suite_dir(c) or _is_bench_dir(c) or _published_files(c))
        ]
    return list(dict.fromkeys(found))


def _check_record(record: Any, where: str) -> str | None:
    """Why a record cannot be used (``None`` when it can)."""
    if not isinstance(record, dict):
        return f"{where}: not a run record (expected a JSON object)"
    schema = record.get("schema")
    if schema != RECORD_SCHEMA:
        return (
            f"{where}: record schema {schema!r}, this wnbench reads schema {RECORD_SCHEMA} "
            f"(written by wnbench {record.get('versions', {}).get('wnbench', '?')}); rerun the suite "
            "or report it with the wnbench that wrote it"
        )
    missing = [k for k in ("run_id", "suite", "claims", "status", "config", "metrics") if k not in record]
    if missing:
        return f"{where}: record lacks {', '.join(missing)}"
    mistyped = [
        k
        for k, kind in (("config", dict), ("metrics", dict), ("claims", list))
        if not isinstance(record[k], kind)
    ]
    if mistyped:
        return f"{where}: record field(s) of the wrong type: {', '.join(mistyped)}"
    if record["status"] not in STATUSES:
        return f"{where}: unknown status {record['status']!r}"
    config_missing = [
        k for k in ("kind", "task", "algo", "norm", "seed", "params") if k not in record["config"]
    ]
    if config_missing:
        return f"{where}: record config lacks {', '.join(config_missing)}"
    return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        return err


def _records_of(directory: Path, skipped: list[str]) -> Iterable[dict[str, Any]]:
    for path, data in iter_record_files(directory):
        if isinstance(data, Exception):
            skipped.append(f"{path}: unreadable ({data})")
            continue
        problem = _check_record(data, str(path))
        if problem:
            skipped.append(problem)
            continue
        data["_dir"] = str(path.parent)
        yield data


def _published_records_of(archive: Archive, skipped: list[str]) -> Iterable[dict[str, Any]]:
    """An archive's records that this wnbench can use (the archive itself was checked whole by read_archive)."""
    thumbnails = published_thumbnails(archive.path)
    for number, data in enumerate(archive.records, 1):
        problem = _check_record(data, f"{archive.path}:{number}")
        if problem:
            skipped.append(problem)
            continue
        if data["run_id"] in thumbnails:
            data["_samples"] = str(thumbnails[data["run_id"]])
        yield data


def _read_archives(paths: Sequence[Path], inputs: Inputs) -> list[Archive]:
    """Every archive read and checked against its plan; any damaged one stops the report (exit 2, each named with
    how to recover): a verdict from part of the published records would look like a whole one."""
    archives, damaged = [], []
    for path in paths:
        try:
            archives.append(read_archive(path))
        except ArchiveError as err:
            damaged.append(err)
    if damaged:
        raise UserError(
            f"{len(damaged)} published archive(s) damaged; nothing was reported",
            [str(err) for err in damaged] + recovery_hints(*(err.archive for err in damaged)),
        )
    for archive in archives:
        if not archive.sealed:
            inputs.warnings.append(
                f"{archive.path}: no digest recorded in its plan (written before wnbench recorded them); checked only "
                f"that it decompresses and parses. Run `wnbench verify --seal {archive.path.parent}` to record one"
            )
    return archives


def _add_suite(
    inputs: Inputs,
    by_id: dict[str, dict[str, Any]],
    where: Path,
    manifest: Any,
    records: Iterable[dict[str, Any]],
) -> None:
    """One suite's records (a run folder, or a published ``.jsonl.gz`` with its plan) into ``by_id``: only those
    its manifest plans, and of several records of one run the best status."""
    planned = None
    if isinstance(manifest, dict) and isinstance(manifest.get("run_ids"), list):
        planned = {str(r) for r in manifest["run_ids"]}
        inputs.manifests.append(
            SuiteManifest(
                where,
                str(manifest.get("suite", where.name)),
                str(manifest.get("profile", "?")),
                list(manifest.get("claims", [])),
                [str(r) for r in manifest["run_ids"]],
            )
        )
    stale = 0
    for record in records:
        if planned is not None and record["run_id"] not in planned:
            stale += 1  # from an earlier plan: a config or profile changed since
            continue
        old = by_id.get(record["run_id"])
        if old is None or _STATUS_RANK[record["status"]] < _STATUS_RANK[old["status"]]:
            by_id[record["run_id"]] = record
    if stale:
        inputs.skipped.append(
            f"{where}: {stale} record(s) not in the suite's last plan (suite.json) -- an earlier profile "
            "or configuration; not reported"
        )


def load_inputs(directories: Sequence[str | Path]) -> Inputs:
    """Read every record, manifest and benchmark file under ``directories``.

    Raises :class:`UserError` (exit 2) when nothing usable is found, and when a published archive is damaged or
    differs from its plan (never a report from part of it); records of another schema version are
    skipped with one line each in ``Inputs.skipped``.
    """
    dirs = _expand([Path(d) for d in directories])
    inputs = Inputs(sources=dirs)
    by_id: dict[str, dict[str, Any]] = {}
    for directory in dirs:
        if _is_suite_dir(directory):
            manifest = _read_json(directory / "suite.json")
            _add_suite(inputs, by_id, directory, manifest, _records_of(directory, inputs.skipped))
        for archive in _read_archives(_published_files(directory), inputs):
            _add_suite(
                inputs, by_id, archive.path, archive.plan, _published_records_of(archive, inputs.skipped)
            )
        for name in BENCH_FILES:
            data = _read_json(directory / name)
            if isinstance(data, dict) and isinstance(data.get("rows"), list):
                inputs.bench[name.removesuffix(".json")] = data
            elif (directory / name).exists():
                inputs.skipped.append(f"{directory / name}: not a wnbench benchmark file ({data})")
    inputs.records = sorted(by_id.values(), key=lambda r: r["run_id"])
    folders: dict[str, list[str]] = {}
    for manifest in inputs.manifests:
        folders.setdefault(manifest.suite, []).append(str(manifest.directory))
    inputs.warnings += [
        f"suite '{suite}' comes from {len(dirs_)} folders ({', '.join(dirs_)}): their runs are pooled"
        for suite, dirs_ in folders.items()
        if len(dirs_) > 1
    ]
    if not inputs.records and not inputs.bench:
        shown = ", ".join(str(d) for d in directories)
        problems = inputs.skipped or [
            "expected suite outputs (runs/*/record.json, from `wnbench run`), published records "
            f"(<suite>.jsonl.gz, from `wnbench publish`) or benchmark files ({', '.join(BENCH_FILES)}, "
            "from `wnbench bench`)"
        ]
        raise UserError(f"no usable run records or benchmark results in {shown}", problems)
    return inputs
