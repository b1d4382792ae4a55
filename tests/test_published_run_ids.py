"""The committed records are still the runs their suites plan: a change to a kind's ``Params`` (a new field with a
default), to a config file or to a suite that silently changes run ids would make ``wnbench publish`` drop the
published records as "no longer planned" and ``wnbench run`` rerun them. Adding a field to a kind's identity must
keep every published run id (or retire the records on purpose, with a note)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wnbench.suite.published import _current_run_ids, read_archive

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "results" / "published"
ARCHIVES = sorted(PUBLISHED.glob("*.jsonl.gz"))


@pytest.mark.parametrize("archive_path", ARCHIVES, ids=[p.name for p in ARCHIVES])
def test_every_published_record_is_still_a_planned_run(archive_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)  # plans name their suite file relative to the repository root
    archive = read_archive(archive_path)
    records = {r["run_id"]: r for r in archive.records}
    planned = _current_run_ids(archive.plan or {}, records)
    assert planned is not None, f"{archive.plan and archive.plan.get('path')}: its profiles no longer load"
    orphans = sorted(set(records) - planned)
    assert not orphans, (
        f"{len(orphans)} of {len(records)} records in {archive_path.name} are no longer planned by "
        f"{archive.plan['path']} (first: {records[orphans[0]]['config']}); a change to a kind's Params, a config "
        "or the suite moved their run ids"
    )
