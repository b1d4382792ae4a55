"""The ``init_gain`` norm option: a careless initialization (registry v3, claim C6).

Every norm takes ``init_gain`` (a float > 0, default 1): the hidden layers it builds have their initial weights
multiplied by the gain *after* the algorithm's own initialization (SB3's orthogonal init, torch's default) and
before WN's data-dependent init, which runs on the first batch::

    norm = make_norm("weight", init_gain=10)     # label "weight[init_gain=10]"
    net = norm.mlp(8, [64, 64], 2)               # hidden layers marked with the gain; the output layer is not
    apply_init_gain(net)                         # scales them once (later calls are no-ops)

What is scaled, per layer kind:

* plain layers (``none``, and the layer under an activation norm: ``batch``...): the weight. Under BN the layer's
  output in train mode is unchanged (BN removes the scale); only the effective learning rate moves.
* WN layers: ``v``, and without DDI ``g`` with it, so the effective weight ``g v / ||v||`` is scaled. With DDI,
  ``g`` (and ``b``) are then set from data, so only ``||v||`` -- and with it the effective learning rate -- moves.
* spectral norm: the parametrization's original weight (the normalized weight is unchanged).
* projected kinds: the stored weight (and the ``initial`` mode's target norm).

Output layers (built with ``normalize=False``) keep their init. Recurrent layers refuse a gain other than 1
(:meth:`~wnbench.norms.Norm.wrap_lstm`). A gain of 1 marks nothing and changes nothing, so runs without the option
are bit-identical to those before it existed, and their run ids (the suite's norm spec) are unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from .factory import NormError

__all__ = ["GAIN_OPTION", "check_gain", "mark", "apply_init_gain", "marked_gain"]

GAIN_OPTION = "init_gain"
_MARK = "_wnbench_init_gain"  # the gain a hidden layer was built with (absent at gain 1)
_DONE = "_wnbench_init_gain_applied"


def check_gain(kind: str, value: Any) -> float:
    """``value`` as a float > 0 (finite), else :class:`NormError` naming the option."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)) or not float(value) > 0:
        raise NormError(
            f"norm '{kind}': option '{GAIN_OPTION}' must be a finite number > 0 (the factor on the hidden layers' "
            f"initial weights), got {value!r}"
        )
    return float(value)


def mark(module: nn.Module, gain: float) -> nn.Module:
    """Record on a hidden layer the gain its initial weights take (nothing at gain 1). Returns the module."""
    if gain != 1.0:
        setattr(module, _MARK, float(gain))
    elif hasattr(module, _MARK):
        delattr(module, _MARK)
    return module


def marked_gain(module: nn.Module) -> float:
    """The gain ``module`` was marked with (1 when unmarked)."""
    return float(getattr(module, _MARK, 1.0))


@torch.no_grad()
def _scale(layer: nn.Module, gain: float) -> int:
    """Scale one weight-bearing module; the number of tensors scaled."""
    from .projected import ProjectedMixin
    from .weightnorm import WeightNormMixin

    if isinstance(layer, WeightNormMixin):
        layer.v.mul_(gain)
        if not layer.ddi:
            layer.g.mul_(gain)
        layer.invalidate_cache()
        return 1
    if isinstance(layer, ProjectedMixin):
        layer.weight.mul_(gain)
        if getattr(layer, "target_norm", None) is not None:
            layer.target_norm.mul_(gain)
        return 1
    if isinstance(layer, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
        if parametrize.is_parametrized(layer, "weight"):
            layer.parametrizations.weight.original.mul_(gain)
        else:
            layer.weight.mul_(gain)
        return 1
    return 0


def _weight_layers(module: nn.Module) -> list[nn.Module]:
    """The weight-bearing modules inside a marked hidden layer (its activation norm's affine weight excluded)."""
    from .projected import ProjectedMixin
    from .weightnorm import WeightNormMixin

    kinds = (WeightNormMixin, ProjectedMixin, nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
    return [m for m in module.modules() if isinstance(m, kinds)]


def apply_init_gain(model: nn.Module) -> int:
    """Multiply the initial weights of every hidden layer in ``model`` marked with a gain, once per layer (a layer
    already scaled is skipped, so calling it again, or on a network and then on its owner, is safe). Call it after
    the algorithm's own initialization and before data-dependent init. Returns the number of layers scaled."""
    count = 0
    for module in model.modules():
        gain = getattr(module, _MARK, None)
        if gain is None or getattr(module, _DONE, False):
            continue
        layers = _weight_layers(module)
        if not layers or sum(_scale(layer, gain) for layer in layers) == 0:
            raise NormError(
                f"option '{GAIN_OPTION}': hidden layer {type(module).__name__} has no weight it knows how to scale"
            )
        setattr(module, _DONE, True)
        count += 1
    return count
