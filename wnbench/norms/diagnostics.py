"""Weight-norm growth and effective learning rate of a network, whatever its norm (pure torch).

The quantities behind the scale-invariance argument (van Laarhoven 2017; CrossQ + WN; NaP, Lyle et al. 2024):
for a layer whose output does not depend on its weight's scale, a step changes the weight's *direction* by
about ``lr / ||w||^2`` times the gradient, so unconstrained weight growth silently decays the learning rate, and
projecting the weight back to a fixed norm holds it constant. Measured here:

* :func:`updated_weights`: the tensor the optimizer updates in each layer (``v`` for WN, the stored weight of a
  projected layer, the original weight under spectral norm, ``weight`` for plain linear/conv layers);
* :func:`mean_weight_norm`: the mean of their Frobenius norms;
* :func:`effective_lr`: the mean relative change ``||w - w0|| / ||w0||`` per optimizer step since a snapshot.

:class:`WeightGrowth` keeps the snapshot between points. ``wnbench.gen`` logs these as ``diag/<network>_weight_norm``
and ``diag/<network>_eff_lr``; ``wnbench.rl.diagnostics`` measures the same for the RL critic.
"""

from __future__ import annotations

import torch
from torch import nn

from .projected import ProjectedMixin
from .weightnorm import WeightNormMixin

__all__ = ["updated_weights", "mean_weight_norm", "effective_lr", "WeightGrowth"]

_PLAIN = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def updated_weights(net: nn.Module, *, skip_output: bool = False) -> list[torch.Tensor]:
    """The weight the optimizer updates in each linear/conv layer of ``net``, in module order.

    ``skip_output`` drops the last one (a network's output layer, which every norm leaves plain), so the
    mean describes the normalized hidden layers.
    """
    found: list[torch.Tensor] = []
    for m in net.modules():
        if isinstance(m, WeightNormMixin):
            found.append(m.v)
        elif isinstance(m, ProjectedMixin):
            found.append(m.weight)
        elif isinstance(m, _PLAIN):
            plist = getattr(m, "parametrizations", None)
            if plist is not None and "weight" in plist:
                plist = plist.weight  # torch's ParametrizationList: SN keeps 'original', WN 'original0/1'
                found.append(plist.original if hasattr(plist, "original") else plist.original1)
            else:
                found.append(m.weight)
    return found[:-1] if skip_output and len(found) > 1 else found


def mean_weight_norm(weights: list[torch.Tensor]) -> float | None:
    """Mean Frobenius norm of ``weights`` (None when there are none)."""
    if not weights:
        return None
    return float(torch.stack([w.detach().norm() for w in weights]).mean())


def effective_lr(weights: list[torch.Tensor], previous: list[torch.Tensor], steps: int) -> float | None:
    """Mean over layers of ``||w - w_prev|| / ||w_prev||``, divided by the optimizer ``steps`` between them."""
    if not weights or steps <= 0 or len(weights) != len(previous):
        return None
    rel = [
        (w.detach() - w0).norm() / w0.norm().clamp_min(1e-12) for w, w0 in zip(weights, previous, strict=True)
    ]
    return float(torch.stack(rel).mean()) / steps


class WeightGrowth:
    """Snapshot-and-measure helper: :meth:`measure` gives ``(weight_norm, eff_lr)`` since the last call."""

    def __init__(self, net: nn.Module, *, skip_output: bool = True) -> None:
        self.net, self.skip_output = net, skip_output
        self._previous: list[torch.Tensor] = []
        self._steps_at_snapshot = 0
        self.snapshot(0)

    def snapshot(self, steps: int) -> None:
        """Remember the current weights and the optimizer step count they belong to."""
        self._previous = [w.detach().clone() for w in updated_weights(self.net, skip_output=self.skip_output)]
        self._steps_at_snapshot = steps

    def measure(self, steps: int) -> tuple[float | None, float | None]:
        """``(mean weight norm, effective lr per step since the snapshot)`` at optimizer step ``steps``; re-snapshots."""
        weights = updated_weights(self.net, skip_output=self.skip_output)
        result = (
            mean_weight_norm(weights),
            effective_lr(weights, self._previous, steps - self._steps_at_snapshot),
        )
        self.snapshot(steps)
        return result
