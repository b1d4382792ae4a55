"""Batch-statistics layers in SB3 training: which layers keep batch statistics, and how they are run.

How batch statistics meet SB3 (why ``bn_mode`` exists)
------------------------------------------------------
SB3 puts the policy in eval mode while it collects experience and in train mode inside ``train()``:

* **rollouts/evaluation** use the *running* averages (eval mode) — the only sensible choice when the batch
  is one observation (``n_envs=1``: BatchNorm1d refuses a batch of 1 in train mode, and with several envs
  an action would depend on what the *other* envs happen to see);
* **updates** normalize with the *minibatch* statistics and move the running averages.

So with BN the network that acted is not the network that is trained. In PPO the "old" log-probabilities
come from the running-stat network and the new ones from the batch-stat network: the importance ratio is
not 1 even before the first gradient step — exactly the noise the WN paper blames BN for. In SAC/TD3/DQN
the online critic (train mode, statistics of ``(s, a)``) is matched against a target critic in eval mode
whose copied running statistics describe a different distribution, ``(s', a')``.


``bn_mode`` options (no effect on norms without batch statistics):

* ``"sb3"`` (default): the stock behaviour above — what a user of SB3 gets when inserting BN.
* ``"running"``: batch-statistics layers *always* normalize with running statistics (also during updates,
  so acting and learning use the same function and PPO's first ratio is exactly 1). The running statistics
  are refreshed once per rollout by :class:`~wnbench.rl.norm_callback.NormCallback` with a no-grad train-mode pass over fresh data
  (the rollout buffer, or one replay batch for off-policy). On-policy, the refreshed statistics are installed
  when the *next* rollout starts, so the update on a rollout uses the statistics that collected it (measured:
  installing them at once left PPO's first ratio 2e-4 to 7e-4 off 1). BN then acts as a slowly adapting, data-driven
  affine input scaling without minibatch noise — the control that separates "BN's noise" from "BN's
  normalization".
* A ``"train"`` mode (rollouts with batch statistics) is deliberately not offered: for ``n_envs=1`` it is
  undefined and otherwise it makes each action depend on the other environments' states.

The critic pass inside the actor update (``critic_mode``)
---------------------------------------------------------
SAC, TD3 and CrossQ differentiate the critic with respect to the actor's action, ``Q(s, pi(s))``, to update
the actor. What the algorithms ship (read from their ``train()``; tested in tests/test_rl_critic_mode.py):

* SB3 **SAC** and **TD3** run the whole policy in train mode inside ``train()``: that critic pass normalizes
  with the statistics of ``(s, pi(s))`` and moves the running statistics with them (then the critic update
  pass moves them with ``(s, a)``).
* sb3-contrib **CrossQ** runs its *critic update* as one joint train-mode pass over ``[(s, a), (s', pi(s'))]``
  and then switches the critic's BN to eval: its actor-loss pass already uses the running statistics and leaves
  them alone.

``critic_mode`` (an option of the batch-statistics norms, or a policy keyword like ``bn_mode``) chooses that pass:
``"sb3"`` (default) what the algorithm ships; ``"eval"`` running statistics, untouched by the pass (MA-BN, 2025:
eval mode for the critic pass inside the actor update beats train mode there; CrossQ's own choice); ``"train"``
minibatch statistics that move the running ones (SB3 SAC/TD3's stock behaviour). The critic updates, CrossQ's
joint pass included, are never changed. How the pass is recognized, with no copy of any training loop: it is
the critic call whose actions carry a gradient (they come from the actor, which is being differentiated), while
the critic-update and target passes get replay-buffer actions or actions computed under ``no_grad``
(:class:`ActorPassModeMixin`, on every norm policy's critic). Only SAC, TD3 and CrossQ have that pass: a
``critic_mode`` other than ``"sb3"`` on PPO, A2C, DQN or RecurrentPPO, or on a norm without batch statistics
(or a critic without the norm), raises :class:`~wnbench.norms.NormError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch as th
from sb3_contrib.common.torch_layers import BatchRenorm
from torch import nn

from wnbench.norms import MeanOnlyBatchNorm, SequenceBatchNorm
from wnbench.norms.kinds import BN_MODES, CRITIC_MODES

__all__ = [
    "BN_MODES",
    "CRITIC_MODES",
    "BATCH_STAT_TYPES",
    "batch_stat_modules",
    "batch_stats_in_mode",
    "ActorPassModeMixin",
]


#: Layers whose output depends on the batch in train mode and that keep running statistics.
BATCH_STAT_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    BatchRenorm,
    MeanOnlyBatchNorm,
    SequenceBatchNorm,
)


def batch_stat_modules(module: nn.Module) -> list[nn.Module]:
    """The batch-statistics layers (BN, batch renorm, mean-only BN) inside ``module``."""
    return [m for m in module.modules() if isinstance(m, BATCH_STAT_TYPES)]


@contextlib.contextmanager
def batch_stats_in_mode(module: nn.Module, training: bool | None) -> Iterator[None]:
    """Run ``module``'s batch-statistics layers in train (``True``) or eval (``False``) mode inside the block and
    restore each layer's own mode after it; ``None`` leaves them as they are."""
    layers = batch_stat_modules(module) if training is not None else []
    modes = [m.training for m in layers]
    for m in layers:
        m.train(training)
    try:
        yield
    finally:
        for m, mode in zip(layers, modes, strict=True):
            m.train(mode)


class ActorPassModeMixin:
    """For a critic module (``forward(obs, actions)``, ``q1_forward``): runs its batch-statistics layers in
    ``actor_pass_training`` mode (``None``: as the caller left them) in the pass inside the actor update,
    recognized as the call whose ``actions`` carry a gradient (see the module docstring)."""

    actor_pass_training: bool | None = None

    def _actor_pass(self, actions: th.Tensor) -> contextlib.AbstractContextManager[None]:
        if self.actor_pass_training is None or not (th.is_grad_enabled() and actions.requires_grad):
            return contextlib.nullcontext()
        return batch_stats_in_mode(self, self.actor_pass_training)  # type: ignore[arg-type]

    def forward(self, obs: th.Tensor, actions: th.Tensor) -> Any:
        with self._actor_pass(actions):
            return super().forward(obs, actions)  # type: ignore[misc]

    def q1_forward(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        with self._actor_pass(actions):
            return super().q1_forward(obs, actions)  # type: ignore[misc]


def actor_pass_training(critic_mode: str) -> bool | None:
    """``critic_mode`` as the mode of the critic's batch-statistics layers in the actor-loss pass."""
    return {"sb3": None, "eval": False, "train": True}[critic_mode]
