"""The one place generative training meets the norm factory's per-step machinery: a Lightning callback.

:class:`NormCallback`, which every generative LightningModule that mixes in :class:`NormMaintained` hands its
Trainer (Lightning's ``configure_callbacks``: any Trainer, ``train_gen``'s or a test's, resumed fits included),
does two things:

* after every optimizer step, projects the projecting layers (forced_weight, nap, hyperspherical) of the
  networks that optimizer trains, through :func:`wnbench.norms.attach_projection` -- whether the module steps
  its optimizers itself (the GAN's manual optimization) or Lightning does (the VAE);
* once per training epoch, logs each network's ``diag/<network>_weight_norm`` (mean norm of its hidden layers'
  updated weights) and ``diag/<network>_eff_lr`` (their mean relative change per optimizer step of that
  network), the weight-growth / effective-learning-rate diagnostics of :mod:`wnbench.norms.diagnostics`.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from wnbench.norms import attach_projection, projected_modules
from wnbench.norms.diagnostics import WeightGrowth, updated_weights

__all__ = ["NormCallback", "NormMaintained"]


class NormCallback(pl.Callback):
    """Projection after every optimizer step and per-epoch weight diagnostics for the networks ``roles``
    (attribute names of the LightningModule, e.g. ``("generator", "discriminator")``)."""

    def __init__(self, roles: Sequence[str] = ()) -> None:
        self.roles = tuple(roles)
        self._handles: list[RemovableHandle] = []
        self._steps: dict[int, int] = {}
        self._growth: dict[str, tuple[WeightGrowth, int]] = {}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._remove_hooks()
        projecting = projected_modules(pl_module)
        owner: dict[int, int] = {}  # parameter id -> id of the optimizer that trains it
        for opt in trainer.optimizers:
            params = {id(p) for group in opt.param_groups for p in group["params"]}
            owner.update(dict.fromkeys(params, id(opt)))
            mine = [m for m in projecting if any(id(p) in params for p in m.parameters(recurse=False))]
            if mine:
                self._handles.append(attach_projection(opt, *mine))
            self._steps.setdefault(id(opt), 0)
            self._handles.append(opt.register_step_post_hook(self._counter(id(opt))))
        self._growth = {}
        for role in self.roles:
            net = getattr(pl_module, role, None)
            weights = updated_weights(net, skip_output=True) if isinstance(net, nn.Module) else []
            if weights and id(weights[0]) in owner:
                opt_id = owner[id(weights[0])]
                self._growth[role] = (WeightGrowth(net), opt_id)
                self._growth[role][0].snapshot(self._steps[opt_id])

    def _counter(self, key: int):
        def count(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
            self._steps[key] += 1

        return count

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics: dict[str, float] = {}
        for role, (growth, opt_id) in self._growth.items():
            norm, eff = growth.measure(self._steps[opt_id])
            if norm is not None:
                metrics[f"diag/{role}_weight_norm"] = norm
            if eff is not None:
                metrics[f"diag/{role}_eff_lr"] = eff
        if metrics:
            pl_module.log_dict(metrics, on_step=False, on_epoch=True)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._remove_hooks()

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


class NormMaintained:
    """Mixin for generative LightningModules: declares its networks (``network_roles``, attribute names) and
    gives any Trainer that fits it a :class:`NormCallback` for them. Put it before ``pl.LightningModule``."""

    network_roles: tuple[str, ...] = ()

    def configure_callbacks(self) -> list[pl.Callback]:
        return [NormCallback(self.network_roles)]
