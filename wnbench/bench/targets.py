"""Spectral norm in SB3 target networks: sigma of every SN layer's effective weight after training.

A target network stays in eval mode and receives polyak-averaged (or hard-copied) parameters; with torch's
spectral norm its power iteration never runs there, so its layers drift away from sigma = 1. This trains SAC and
TD3 on Pendulum-v1 and DQN on CartPole-v1 with ``norm="spectral"`` and reports sigma per layer for the online and
target networks (``wnbench bench sn-targets``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

#: (algo, env, steps, algorithm kwargs, networks to read)
CASES = (
    ("sac", "Pendulum-v1", 1500, {"learning_starts": 100}, ("critic", "critic_target", "actor")),
    ("td3", "Pendulum-v1", 1500, {"learning_starts": 100}, ("actor", "actor_target", "critic_target")),
    ("dqn", "CartPole-v1", 3000, {"learning_starts": 500, "target_update_interval": 250, "train_freq": 4},
     ("q_net", "q_net_target")),
)  # fmt: skip


@dataclass
class TargetSigmaRow:
    algo: str
    env_id: str
    steps: int
    network: str
    sigmas: list[float]


def layer_sigmas(net: torch.nn.Module) -> list[float]:
    """sigma(effective weight) of each spectral-norm layer, as the network's next forward would use it."""
    from wnbench.norms import spectral_norm_modules

    with torch.no_grad():
        return [round(torch.linalg.matrix_norm(m.weight, 2).item(), 4) for m in spectral_norm_modules(net)]


def measure_target_sigmas(
    net_arch: list[int] | None = None, seed: int = 0, progress: Callable[[str], None] | None = None
) -> list[TargetSigmaRow]:
    from stable_baselines3 import DQN, SAC, TD3

    from wnbench.rl.policies import NormCallback, policy_class_for

    classes = {"sac": SAC, "td3": TD3, "dqn": DQN}
    rows = []
    for algo, env_id, steps, kwargs, networks in CASES:
        if progress:
            progress(f"{algo} {env_id}: {steps} steps")
        model = classes[algo](policy_class_for(algo), env_id, seed=seed, device="cpu",
                              policy_kwargs={"norm": "spectral", "net_arch": net_arch or [64, 64]}, **kwargs)  # fmt: skip
        model.learn(steps, callback=NormCallback())
        rows += [
            TargetSigmaRow(algo, env_id, steps, n, layer_sigmas(getattr(model.policy, n))) for n in networks
        ]
    return rows
