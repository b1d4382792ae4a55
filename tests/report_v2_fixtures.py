"""Record builders shared by the v2-rules report tests (test_report*.py): fixture records written to disk or
kept in memory, and the autouse fixture that points the report at registry_v2.yaml."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from wnbench.report.anchors import rl_anchor
from wnbench.rl.scoring import EVAL_CURVE
from wnbench.suite.store import RECORD_SCHEMA, write_record

RANDOM_CARTPOLE = rl_anchor("CartPole-v1", "ppo").low


REPS = 300  # bootstrap resamples: enough for the fixture's clear-cut answers, fast


@pytest.fixture(autouse=True)
def _registry_v2(monkeypatch):
    """These tests check the v2 rules (registry_v2.yaml: bootstrap over tasks, v2 arm sets and claims); the v3
    decider is tested in tests/test_report_v3.py."""
    from wnbench.report.registry import REGISTRY_V2_FILE

    monkeypatch.setenv("WNBENCH_REGISTRY", str(REGISTRY_V2_FILE))


#: Final return of each norm's seeds on two tasks: weight clearly beats batch; one batch run diverges, one fails.
RETURNS = {
    "CartPole-v1": {"none": [480, 490, 500, 470], "batch": [60, 80, None, 70], "weight": [495, 500, 500, 490]},
    "Pendulum-v1": {"none": [-200, -180, -220, -190], "batch": [-900, -800, -850, "failed"], "weight": [-210, -170, -190, -185]},
}  # fmt: skip


def _record(run_id: str, suite: str, claims: list[str], task: str, norm: str, seed: int, value, **params):
    status = "finished" if isinstance(value, int | float) else ("diverged" if value is None else "failed")
    steps = [0, 1000, 2000]
    final = float(value) if status == "finished" else None
    return {
        "run_id": run_id,
        "suite": suite,
        "claims": claims,
        "status": status,
        "config": {
            "kind": "rl",
            "task": task,
            "algo": "ppo",
            "norm": norm,
            "norm_spec": {"name": norm},
            "seed": seed,
            "params": {"eval_every": 1000, **params},
            "budget": {"steps": 2000},
            "resolved": None,
        },  # fmt: skip
        "metrics": {}
        if final is None
        else {"final_return": final, "steps_per_cpu_s": 1000.0 - 100 * (norm == "batch")},
        "curves": {} if final is None else {EVAL_CURVE: {"step": steps, "value": [0.0, final / 2, final]}},
        "error": "RuntimeError: worker crashed (fixture)" if status == "failed" else None,
        "diverged_at_step": 1500 if status == "diverged" else None,
        "timings": {"run_cpu_s": 1.0},
        "versions": {"wnbench": "0.1.0"},
        "schema": RECORD_SCHEMA,
    }


def write_fixture(out: Path, planned_extra: int = 2) -> list[str]:
    ids = []
    for task, by_norm in RETURNS.items():
        for norm, values in by_norm.items():
            for seed, value in enumerate(values):
                run_id = f"{task[:4]}{norm[:4]}{seed}".lower()
                write_record(out, _record(run_id, "rl", ["C1", "C6"], task, norm, seed, value))
                ids.append(run_id)
    manifest = {"suite": "rl", "profile": "default", "claims": ["C1", "C6"], "run_ids": ids + [f"lost{i}" for i in range(planned_extra)]}  # fmt: skip
    (out / "suite.json").write_text(json.dumps(manifest))
    return ids


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wnbench.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def _records(cells: dict, suite: str = "rl", claims=("C1",), **extra) -> list[dict]:
    """``{task: {norm: [values]}}`` -> records (in memory), seeds 0..n-1."""
    out = []
    for task, by_norm in cells.items():
        for norm, values in by_norm.items():
            for seed, value in enumerate(values):
                r = _record(f"{task}-{norm}-{seed}", suite, list(claims), task, norm, seed, value, **extra)
                out.append(r)
    return out


def _c(results, claim="C1"):
    return {r.claim: r for r in results}[claim]


def _gen_record(run_id: str, task: str, norm: str, seed: int, value: float, **params) -> dict:
    r = _record(run_id, "gen", ["C2"], task, norm, seed, value, **params)
    r["config"].update(kind="gen", algo="gan")
    r["config"]["params"] = dict(params)
    r["metrics"] = {"hq_coverage_pct": float(value), "modes_covered": 8.0}
    r["curves"] = {}
    return r
