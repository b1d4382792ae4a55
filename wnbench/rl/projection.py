"""Weight projections in SB3: after every optimizer step, for every algorithm, target copies included.

Some kinds keep their stored weights on a fixed-norm set by projecting them back after each update instead of
reparameterizing them: EDM2's forced WN, NaP (LN + weight projection), SimbaV2's hyperspherical layers. Such a
layer says so with ``projects_weights = True`` and ``project_()`` (:mod:`wnbench.norms.projection`). This module
is the SB3 side, one mechanism with no per-algorithm code:

* **online networks**: every optimizer SB3 keeps on the policy or one of its networks (an ``optimizer``
  attribute: ``policy.optimizer`` for PPO, A2C, DQN and RecurrentPPO; ``actor.optimizer`` and
  ``critic.optimizer`` for SAC, TD3 and CrossQ) gets :func:`~wnbench.norms.attach_projection` for the projected
  layers whose parameters it updates, so each layer is back on its set after every ``optimizer.step()``.
* **target copies** (projected layers no optimizer updates: SAC/TD3's ``critic_target``/``actor_target``, DQN's
  ``q_net_target``): SB3 changes them *after* the optimizer steps, by polyak averaging (an average of projected
  weights is off the set: two unit vectors average to less than unit norm) or by a hard copy. A forward pre-hook
  projects such a layer before each of its forward passes, so a target is never *used* off its set;
  :class:`~wnbench.rl.norm_callback.NormCallback` also projects the whole policy at the start (after DDI) and at
  the end of training, so the *stored* weights (what ``model.save`` writes after ``learn``) are on it too.

The norm policies attach all this when they are built (:func:`attach_policy_projection`); a policy without
projected layers gets nothing. Attaching again (a rebuilt optimizer, a second ``learn``) replaces the hooks.
"""

from __future__ import annotations

import weakref

import torch as th
from torch import nn
from torch.utils.hooks import RemovableHandle

from wnbench.norms import attach_projection, projected_modules

__all__ = ["policy_optimizers", "attach_policy_projection"]

#: policy -> the hooks attach_policy_projection registered for it (removed when it attaches again).
_ATTACHED: weakref.WeakKeyDictionary[nn.Module, list[RemovableHandle]] = weakref.WeakKeyDictionary()


def policy_optimizers(policy: nn.Module) -> list[th.optim.Optimizer]:
    """Every torch optimizer held as an ``optimizer`` attribute by ``policy`` or one of its submodules."""
    found: dict[int, th.optim.Optimizer] = {}
    for module in policy.modules():
        optimizer = module.__dict__.get("optimizer")
        if isinstance(optimizer, th.optim.Optimizer):
            found.setdefault(id(optimizer), optimizer)
    return list(found.values())


def _project_before_forward(layer: nn.Module, _args: tuple) -> None:
    """Forward pre-hook of a target copy: put it back on its norm set before it is used.

    Every time, not only after a change: SB3's ``polyak_update`` writes through ``.data``, which torch's in-place
    version counter does not see, and one projection of a few small layers per target forward costs next to
    nothing (the target's forward itself does more)."""
    with th.no_grad():
        layer.project_()


def attach_policy_projection(policy: nn.Module) -> int:
    """Project ``policy``'s projected layers after every step of the optimizer that updates them, and its target
    copies before any forward that follows a change (module docstring). Returns the number of projected layers."""
    for handle in _ATTACHED.pop(policy, []):
        handle.remove()
    layers = projected_modules(policy)
    if not layers:
        return 0
    handles: list[RemovableHandle] = []
    updated: set[int] = set()
    for optimizer in policy_optimizers(policy):
        params = {id(p) for group in optimizer.param_groups for p in group["params"]}
        owned = [m for m in layers if any(id(p) in params for p in m.parameters())]
        if owned:
            handles.append(attach_projection(optimizer, *owned))
            updated.update(id(m) for m in owned)
    for layer in layers:
        if id(layer) not in updated:  # a target copy (or a frozen layer): projected when SB3 has changed it
            handles.append(layer.register_forward_pre_hook(_project_before_forward))
    _ATTACHED[policy] = handles
    return len(layers)
