"""RL layer: SB3 policies built from the norm factory, tasks by gymnasium id, zoo hyperparameters, one-run trainer.

    from wnbench.rl import train_rl, validate_rl
    problems = validate_rl("ppo", "CartPole-v1", "weight_ddi")      # [] or one line per problem
    record = train_rl("ppo", "CartPole-v1", "weight_ddi", seed=0)   # eval curve, final_return, steps/s ...

Names are imported lazily: ``import wnbench.rl`` does not pull in stable-baselines3 until one is used.
"""

from __future__ import annotations

from wnbench.lazy import lazy_exports

_EXPORTS = {
    "train_rl": "train",
    "RunDiverged": "train",
    "CallbackOutputFormat": "train",
    "normalized_auc": "train",
    "validate_rl": "tasks",
    "register_envs": "tasks",
    "ALGORITHMS": "tasks",
    "load_hyperparams": "hyperparams",
    "RLHyperparams": "hyperparams",
    "NormActorCriticPolicy": "policies",
    "NormRecurrentActorCriticPolicy": "policies",
    "NormDQNPolicy": "policies",
    "NormSACPolicy": "policies",
    "NormTD3Policy": "policies",
    "NormCrossQPolicy": "policies",
    "MinAtarCNN": "extractors",
    "NormCallback": "norm_callback",
    "initialize_policy": "norm_callback",
    "policy_class_for": "policies",
    "BN_MODES": "batch_stats",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
