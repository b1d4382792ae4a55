"""The committed records are still the runs their suites plan: a change to a kind's ``Params`` (a new field with a
default), to a config file or to a suite that silently changes run ids would make ``wnbench publish`` drop the
published records as "no longer planned" and ``wnbench run`` rerun them. Adding a field to a kind's identity must
keep every published run id (or retire the records on purpose, with a note)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from wnbench.suite.spec import load_suite
from wnbench.suite.tuning import add_tuned_runs

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "results" / "published"
PLANS = sorted(PUBLISHED.glob("*.plan.json"))


def _records(plan_path: Path) -> dict[str, dict]:
    archive = plan_path.with_name(plan_path.name.removesuffix(".plan.json") + ".jsonl.gz")
    with gzip.open(archive, "rt", encoding="utf-8") as fh:
        return {r["run_id"]: r for r in map(json.loads, filter(str.strip, fh))}


@pytest.mark.parametrize("plan_path", PLANS, ids=[p.name for p in PLANS])
def test_every_published_record_is_still_a_planned_run(plan_path: Path) -> None:
    plan = json.loads(plan_path.read_text())
    records = _records(plan_path)
    planned: set[str] = set()
    for profile in plan.get("profiles") or [plan["profile"]]:
        suite = load_suite(ROOT / plan["path"], profile, run_kind_checks=False)
        add_tuned_runs(suite, None, lookup=records.get)
        planned |= {run.run_id for run in suite.runs}
    orphans = sorted(set(records) - planned)
    assert not orphans, (
        f"{len(orphans)} of {len(records)} records in {plan_path.name} are no longer planned by {plan['path']} "
        f"(first: {records[orphans[0]]['config']}); a change to a kind's Params, a config or the suite moved their "
        "run ids"
    )
