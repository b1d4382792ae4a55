"""Spectral normalization whose estimate stays right in every copy of a network.

torch's ``parametrizations.spectral_norm`` runs its power iteration only in train mode. A target network
(SB3 keeps SAC/TD3/DQN targets in eval mode forever) therefore divides its polyak-averaged weights by a
largest singular value estimated once, at construction, and its layers drift away from sigma = 1 as the
online weights move (figures: docs/measurements/docstring-figures-2026-12.md).

Here, in eval mode, the power iteration runs whenever the weight differs from the one the current
``u``/``v`` were fitted to (an exact comparison: updates through ``.data``, as SB3's ``polyak_update``
makes them, bypass version counters), until the estimate of sigma settles (relative change below
``1e-4``, at most 50 iterations): a polyak-averaged target lags its online network, so one iteration
from vectors fitted to other weights leaves sigma visibly above 1. With an
unchanged weight eval mode stays a pure function, as in torch; train mode is torch's, one iteration per
call. The ``_u``/``_v`` buffers are also state that :func:`wnbench.norms.norm_state_buffers` carries into
target copies: a target starts each refit from the online network's vectors.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm

__all__ = ["TrackedSpectralNorm", "spectral_norm", "spectral_norm_modules"]


class TrackedSpectralNorm(_SpectralNorm):
    """torch's spectral-norm parametrization, plus a power iteration in eval mode when the weight changed."""

    def __init__(self, weight: torch.Tensor, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12):
        super().__init__(weight, n_power_iterations, dim, eps)
        # The weight u/v were last fitted to; a plain attribute (not a buffer): not state to copy or save.
        self._fitted: torch.Tensor | None = None
        self._normalized: torch.Tensor | None = None  # eval-mode, no-grad result for ``_fitted``

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if weight.ndim > 1 and not self.training:
            fitted = self._fitted
            unchanged = (
                fitted is not None
                and fitted.shape == weight.shape
                and fitted.device == weight.device
                and torch.equal(fitted, weight)
            )
            if not unchanged:
                self._refit(self._reshape_weight_to_matrix(weight.detach()))
                self._fitted = weight.detach().clone()
                self._normalized = None
            elif self._normalized is not None and not torch.is_grad_enabled():
                return self._normalized  # eval, no grad, same weight and u/v: the same normalized weight
            out = super().forward(weight)
            if not torch.is_grad_enabled():
                self._normalized = out
            return out
        if self.training:
            self._fitted = self._normalized = None  # train mode iterates on every call; the next eval refits
        return super().forward(weight)

    @torch.no_grad()
    def _refit(self, weight_mat: torch.Tensor, tol: float = 1e-4, max_iterations: int = 50) -> None:
        previous = None
        for done in range(1, max_iterations + 1):
            self._power_method(weight_mat, 1)
            sigma = torch.dot(self._u, torch.mv(weight_mat, self._v)).item()
            if (
                done >= self.n_power_iterations
                and previous is not None
                and abs(sigma - previous) <= tol * abs(sigma)
            ):
                return
            previous = sigma

    def _load_from_state_dict(self, *args, **kwargs):  # new u/v (hard copy, checkpoint): refit in eval
        self._fitted = self._normalized = None
        return super()._load_from_state_dict(*args, **kwargs)


def spectral_norm(module: nn.Module, name: str = "weight", n_power_iterations: int = 1) -> nn.Module:
    """Register :class:`TrackedSpectralNorm` on ``module.<name>`` (same layout as torch's ``spectral_norm``:
    ``module.parametrizations.<name>.original`` and buffers ``_u``, ``_v``)."""
    weight = getattr(module, name)
    dim = 1 if isinstance(module, nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d) else 0
    parametrize.register_parametrization(module, name, TrackedSpectralNorm(weight, n_power_iterations, dim))
    return module


def spectral_norm_modules(model: nn.Module) -> list[nn.Module]:
    """Layers of ``model`` that carry a spectral-norm parametrization (torch's or ours)."""
    found = []
    for m in model.modules():
        plist = getattr(m, "parametrizations", None)
        if plist is not None and any(isinstance(p, _SpectralNorm) for ps in plist.values() for p in ps):
            found.append(m)
    return found
