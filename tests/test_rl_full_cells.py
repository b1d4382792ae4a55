"""Every cell of the RL suite's ``full`` profile runs, at a tiny budget, with the arms most likely to break.

A cluster user launching ``--profile full`` must never meet a cell (task x algorithm) that fails on start-up:
each is trained here for a few hundred steps with no norm, BN with running statistics and CrossQ+WN's
composition (pre placement for CrossQ), and must finish with a finite return.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from wnbench.suite.spec import load_suite

ROOT = Path(__file__).resolve().parent.parent
FULL = load_suite(ROOT / "suites" / "rl.yaml", "full", run_kind_checks=False)
CELLS = sorted({(run.task, run.algo) for run in FULL.runs})

ON_POLICY = {"n_envs": 2, "n_steps": 32, "batch_size": 32, "n_epochs": 1}
OFF_POLICY = {
    "learning_starts": 32,
    "batch_size": 16,
    "buffer_size": 2000,
    "train_freq": 1,
    "gradient_steps": 1,
}


def _tiny(algo: str) -> dict:
    if algo in ("ppo", "a2c"):
        return {k: v for k, v in ON_POLICY.items() if algo == "ppo" or k in ("n_envs", "n_steps")}
    extra = {"target_update_interval": 50, "exploration_fraction": 0.5} if algo == "dqn" else {}
    return {**OFF_POLICY, **extra}


@pytest.mark.slow
@pytest.mark.parametrize(("task", "algo"), CELLS, ids=[f"{a}-{t}" for t, a in CELLS])
def test_every_full_profile_cell_trains_at_a_tiny_budget(task, algo):
    from wnbench.rl.train import train_rl

    pre = {"placement": "pre"} if algo == "crossq" else {}
    arms = ["none", {"name": "batch", "bn_mode": "running", **pre},
            {"name": "weight+batch_renorm", "warmup_steps": 20, **pre}]  # fmt: skip
    for norm in arms:
        record = train_rl(algo, task, norm, hyperparams=_tiny(algo), seed=0, total_steps=192, eval_every=96,
                          eval_episodes=1, final_evals=1, ddi_steps=32)  # fmt: skip
        assert record["total_steps"] >= 192 and math.isfinite(record["final_return"]), (task, algo, norm)
