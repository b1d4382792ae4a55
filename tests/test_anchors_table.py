"""The committed anchors.yaml against the rl-v3 paper profile: every cell has a measured random-policy score and is
graded on the basis docs/measurements/rl-v3-references.md states (the figure at the cell's budget, a point of the
reference's learning curve, or a final figure it can only reach); the v2 cells keep the grades the report gave
them (docs/results/report.md's peer table)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from wnbench.report.anchors import BASIS_CURVE, BASIS_FINAL, BASIS_REACHED_ONLY, rl_peer_anchor
from wnbench.report.cells import AT_PEER_GRADE, BELOW_PEER_GRADE, peer_grade
from wnbench.suite.store import RECORD_SCHEMA

ROOT = Path(__file__).resolve().parents[1]

#: (task, algo, budget) -> (basis, the figure graded against): the doc's table.
EXPECTED = {
    ("CartPole-v1", "ppo", 50000): (BASIS_REACHED_ONLY, 500.0),
    ("Pendulum-v1", "ppo", 50000): (BASIS_CURVE, -153.4),
    ("CartPole-v1", "dqn", 50000): (BASIS_FINAL, 500.0),
    ("Acrobot-v1", "dqn", 50000): (BASIS_CURVE, -75.1),
    ("Pendulum-v1", "sac", 10000): (BASIS_CURVE, -128.6),
    ("Pendulum-v1", "crossq", 10000): (BASIS_CURVE, -128.6),
    ("MountainCarContinuous-v0", "ppo", 20000): (BASIS_FINAL, 88.343),
    ("Acrobot-v1", "ppo", 200000): (BASIS_CURVE, -79.6),
    ("MountainCar-v0", "dqn", 120000): (BASIS_FINAL, -100.849),
    ("MountainCarContinuous-v0", "sac", 50000): (BASIS_FINAL, 94.679),
    ("MountainCarContinuous-v0", "crossq", 50000): (BASIS_FINAL, 94.679),
    ("LunarLander-v3", "ppo", 1000000): (BASIS_FINAL, 242.119),
    ("MinAtar/Breakout-v1", "dqn", 200000): (BASIS_CURVE, 6.1),
    ("MinAtar/Freeway-v1", "dqn", 200000): (BASIS_REACHED_ONLY, 50.2),
    ("MinAtar/SpaceInvaders-v1", "dqn", 200000): (BASIS_CURVE, 21.0),
    ("Hopper-v5", "sac", 30000): (BASIS_CURVE, 344.1),
    ("HalfCheetah-v5", "sac", 30000): (BASIS_CURVE, 608.0),
    ("Walker2d-v5", "sac", 30000): (BASIS_CURVE, 281.8),
    ("Hopper-v5", "crossq", 30000): (BASIS_CURVE, 344.1),
    ("HalfCheetah-v5", "crossq", 30000): (BASIS_CURVE, 608.0),
    ("Walker2d-v5", "crossq", 30000): (BASIS_CURVE, 281.8),
}


def _zoo_steps(algo: str, task: str) -> int:
    return int(yaml.safe_load((ROOT / "configs" / "rl" / f"{algo}.yaml").read_text())[task]["n_timesteps"])


def _paper_cells() -> list[tuple[str, str, int]]:
    suite = yaml.safe_load((ROOT / "suites" / "rl-v3.yaml").read_text())
    return [
        (task, algo, int((grid.get("budget") or {}).get("steps") or _zoo_steps(algo, task)))
        for grid in suite["profiles"]["paper"]["grids"]
        for task in grid["tasks"]
        for algo in grid["algos"]
    ]


def test_every_paper_cell_is_graded_on_the_documented_basis():
    cells = _paper_cells()
    assert sorted(cells) == sorted(EXPECTED)
    for task, algo, budget in cells:
        anchor = rl_peer_anchor(task, algo, budget, _zoo_steps(algo, task))
        assert anchor is not None, (task, algo)  # a measured random policy and a figure
        assert (anchor.basis, anchor.high) == EXPECTED[task, algo, budget], (task, algo, budget)


def _cell(task: str, algo: str, values: list[float], steps: int) -> dict[str, list[dict]]:
    norm = "batch_renorm[placement=pre]" if algo == "crossq" else "none"
    return {
        norm: [
            {
                "run_id": f"{task}-{seed}",
                "suite": "t",
                "claims": [],
                "status": "finished",
                "config": {
                    "kind": "rl",
                    "task": task,
                    "algo": algo,
                    "norm": norm,
                    "norm_spec": {"name": norm},
                    "seed": seed,
                    "params": {},
                    "budget": {"steps": steps},
                    "resolved": {"n_timesteps": _zoo_steps(algo, task)},
                },
                "metrics": {"final_return": v, "total_steps": steps},
                "curves": {},
                "timings": {},
                "versions": {},
                "schema": RECORD_SCHEMA,
            }  # fmt: skip
            for seed, v in enumerate(values)
        ]
    }


@pytest.mark.parametrize(
    ("task", "algo", "steps", "values", "grade"),
    [  # docs/results/report.md's peer table (v2 records): median [min, max]
        ("CartPole-v1", "ppo", 50176, [500.0, 500.0, 500.0], AT_PEER_GRADE),
        ("Pendulum-v1", "ppo", 53248, [-209.0, -161.0, -139.0], AT_PEER_GRADE),
        ("Pendulum-v1", "sac", 10000, [-155.0, -137.0, -131.0], AT_PEER_GRADE),
        ("Pendulum-v1", "crossq", 10000, [-155.0, -142.0, -133.0], AT_PEER_GRADE),
        ("Acrobot-v1", "dqn", 50000, [-80.97, -79.37, -77.23], AT_PEER_GRADE),
        ("CartPole-v1", "dqn", 50176, [87.8, 244.0, 493.0], BELOW_PEER_GRADE),
    ],
)
def test_the_v2_cells_keep_their_grades(task, algo, steps, values, grade):
    assert peer_grade(_cell(task, algo, values, steps)) == grade
