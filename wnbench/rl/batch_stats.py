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
"""

from __future__ import annotations

from sb3_contrib.common.torch_layers import BatchRenorm
from torch import nn

from wnbench.norms import MeanOnlyBatchNorm, SequenceBatchNorm
from wnbench.norms.kinds import BN_MODES

__all__ = ["BN_MODES", "BATCH_STAT_TYPES", "batch_stat_modules"]

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
