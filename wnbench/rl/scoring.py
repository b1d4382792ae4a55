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
#: The actor's weight-norm growth and effective learning rate (``diag/actor_*``), beside the critic's above; kept
#: apart so reports built on DIAGNOSTIC_KEYS read records from before they existed unchanged.
ACTOR_DIAGNOSTIC_KEYS = ("actor_weight_norm", "actor_eff_lr")


#: SB3's on-policy defaults (n_steps, batch_size) where a config leaves them out.
_ON_POLICY_DEFAULTS = {"ppo": (2048, 64), "recurrentppo": (128, 128), "a2c": (5, None)}


def full_batch_update(algo: str, batch_size: int | None, rollout_size: int) -> bool:
    """Whether an on-policy update's gradient uses the whole rollout (A2C always; PPO when its minibatch is the
    rollout, as in the zoo's CartPole-v1 entry, 256 = 8 envs x 32 steps). Such an update has no minibatch
    sampling noise, so the ``grad_noise`` diagnostic is not measured there (it would be 0 up to rounding)."""
    return algo.lower() == "a2c" or batch_size is None or batch_size >= rollout_size


def full_batch_config(config: Mapping[str, Any]) -> bool:
    """:func:`full_batch_update` for a run record's config (its resolved zoo hyperparameters)."""
    algo = str(config.get("algo", "")).lower()
    if algo not in _ON_POLICY_DEFAULTS:
        return False
    hp = (config.get("resolved") or {}).get("hyperparams") or {}
    n_steps, batch = _ON_POLICY_DEFAULTS[algo]
    rollout = int(hp.get("n_envs") or 1) * int(hp.get("n_steps") or n_steps)
    return full_batch_update(algo, hp.get("batch_size") or batch, rollout)


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
