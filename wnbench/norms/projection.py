"""Weight projection after optimizer steps: the mechanism behind forced WN (EDM2), NaP and SimbaV2.

A layer whose stored weight must be put back on a fixed-norm set after every update says so with the class
attribute ``projects_weights = True`` and a method ``project_(self) -> None`` (in place, no grad). Training code
then needs one line, whatever the optimizer::

    handle = attach_projection(optimizer, model)     # project after every optimizer.step()
    ...
    handle.remove()                                   # stop

or calls :func:`project_` itself where it steps by hand. Models without such layers cost one empty loop.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

__all__ = ["projected_modules", "project_", "attach_projection", "attached_projections"]

#: Attribute on an optimizer: (ids of the attached models) -> the handle of their post-step hook.
_HOOKS_ATTR = "_wnbench_projection_hooks"


def projected_modules(model: nn.Module) -> list[nn.Module]:
    """Every submodule of ``model`` (itself included) that declares ``projects_weights`` and has ``project_``."""
    return [
        m
        for m in model.modules()
        if getattr(type(m), "projects_weights", False) and callable(getattr(m, "project_", None))
    ]


def project_(model: nn.Module) -> int:
    """Project every projecting submodule of ``model`` back onto its kind's norm set; returns how many."""
    modules = projected_modules(model)
    with torch.no_grad():
        for m in modules:
            m.project_()
    return len(modules)


def attached_projections(optimizer: torch.optim.Optimizer) -> int:
    """How many live projection hooks :func:`attach_projection` registered on ``optimizer``."""
    hooks = getattr(optimizer, _HOOKS_ATTR, {})
    return sum(1 for h in hooks.values() if h.id in optimizer._optimizer_step_post_hooks)


def attach_projection(optimizer: torch.optim.Optimizer, *models: nn.Module) -> RemovableHandle:
    """Project the projecting layers of ``models`` after every ``optimizer.step()`` (any torch optimizer).

    Registers one ``register_step_post_hook``; attaching the same models to the same optimizer again returns
    the live handle instead of registering twice (after ``handle.remove()`` a new attach registers anew).
    The modules are looked up once, here: build the model completely before attaching.

    The optimizer's state is left as it is: Adam's first and second moments keep the values they had
    before the projection. That is what EDM2 and NaP do (EDM2 rescales the stored weight inside the forward
    pass and never touches the optimizer; NaP projects after the step and keeps Adam's state), and it is
    consistent: every projected layer's output is invariant to the scale of its stored weight (forced WN
    divides by the norm, NaP's LayerNorm and SimbaV2's feature normalization follow the layer), so the
    gradient is orthogonal to the weight and scales as 1/norm -- with the norm held fixed the moments see
    gradients of a steady scale, and the projection only removes the radial drift the step introduced.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"attach_projection needs a torch optimizer, got {type(optimizer).__name__}")
    key = tuple(id(m) for m in models)
    hooks: dict[tuple[int, ...], RemovableHandle] = optimizer.__dict__.setdefault(_HOOKS_ATTR, {})
    live = hooks.get(key)
    if live is not None and live.id in optimizer._optimizer_step_post_hooks:
        return live
    modules = [m for model in models for m in projected_modules(model)]

    def hook(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        with torch.no_grad():
            for m in modules:
                m.project_()

    handle = optimizer.register_step_post_hook(hook)
    hooks[key] = handle
    return handle
