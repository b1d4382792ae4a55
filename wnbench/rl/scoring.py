"""How RL runs are graded (imports nothing heavy, so ``wnbench report`` never loads SB3).

The headline of every RL cell is ``final_return`` (mean return of the last evaluations); ``auc_normalized``
(area under the evaluation curve, in return units) rewards learning early; ``steps_per_cpu_s`` is throughput
per CPU second of the training process, the figure least disturbed by other processes on the machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wnbench.suite.kinds import Scoring

METRICS: dict[str, str] = {
    "final_return": "max",
    "auc_normalized": "max",
    "best_return": "max",
    "steps_per_cpu_s": "max",
}
#: The evaluation curve every RL record carries (step = environment steps).
EVAL_CURVE = "eval/mean_return"
#: Mechanism diagnostics (wnbench.rl.diagnostics), logged as ``diag/<key>`` curves, in the order reports show them.
DIAGNOSTIC_KEYS = ("ratio_dev", "grad_noise", "grad_var", "weight_norm", "eff_lr", "q_bias")


def primary_metric(config: Mapping[str, Any]) -> str:
    """Final return, whatever the task or algorithm."""
    return "final_return"


#: The arm whose runs the rl-baselines3-zoo figure is a peer of, per algorithm (default: no norm). CrossQ without
#: its batch renorm and without a target network is not the published algorithm, so its peer is stock CrossQ:
#: batch renorm before every layer and on the input, sb3-contrib's warm-up.
PEER_ARMS = {"crossq": "batch_renorm[placement=pre]"}


def peer_arm(config: Mapping[str, Any]) -> str:
    return PEER_ARMS.get(config["algo"], "none")


SCORING = Scoring(METRICS, primary_metric, peer_arm=peer_arm)
