"""Layers whose stored weight is projected back to a fixed norm after every optimizer step.

One mixin, three ways of holding the norm (``mode``), each the weight part of a registered kind:

* ``"forced"`` -- EDM2's forced weight normalization (Karras et al. 2024): the forward pass uses ``w / ||w||``
  per output unit (unit-norm rows, so the layer is magnitude preserving: unit-variance inputs give
  unit-variance outputs), and :meth:`project_` puts each stored row back at norm ``sqrt(fan_in)`` (unit
  variance per element). The output never depends on the stored scale; the projection only keeps the
  effective learning rate of the direction steady. Optional learned scalar ``gain`` (EDM2's learned gains).
* ``"sphere"`` -- SimbaV2's hyperspherical weights (Lee et al. 2025): each row is projected onto the unit
  sphere and used as stored (no bias: the feature normalization that follows absorbs offsets' scale).
* ``"initial"`` -- NaP (Lyle et al. 2024): the whole weight tensor is projected back to the Frobenius norm it
  had at construction (kept as the buffer ``target_norm``, so it follows the network into target copies via
  :func:`wnbench.norms.norm_state_buffers`) and used as stored; a LayerNorm follows.

The projection is exact (rows divided by their norm, clamped away from zero), so after :meth:`project_` every
row (or the tensor) has the promised norm to float precision.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "PROJECTION_MODES",
    "ProjectedMixin",
    "ProjectedLinear",
    "ProjectedConv2d",
    "ProjectedConvTranspose2d",
    "MPSiLU",
    "mp_silu",
    "SphereScaler",
]

PROJECTION_MODES = ("forced", "sphere", "initial")
_TINY = 1e-12


def mp_silu(x: torch.Tensor) -> torch.Tensor:
    """EDM2's magnitude-preserving SiLU: ``silu(x) / 0.596`` (0.596 = RMS of silu on a unit normal)."""
    return F.silu(x) / 0.596


class MPSiLU(nn.Module):
    """Module form of :func:`mp_silu`, for ``nn.Sequential`` stacks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mp_silu(x)


class ProjectedMixin(nn.Module):
    """Shared part: the ``weight``/``bias`` (and optional ``gain``) parameters, the projection and the forward.

    Subclasses set ``_unit_dim`` (the dimension of ``weight`` indexing output units) and ``_op(x, w, b)``.
    """

    projects_weights: ClassVar[bool] = True
    _unit_dim: ClassVar[int] = 0

    def _setup(self, ref: nn.Module, mode: str, bias: bool, learned_gain: bool = False) -> None:
        if mode not in PROJECTION_MODES:
            raise ValueError(f"projection mode must be one of {', '.join(PROJECTION_MODES)}, got {mode!r}")
        self.mode = mode
        weight = ref.weight.detach().clone()
        if mode == "forced":
            weight.normal_()  # EDM2 initializes the stored weight as unit normal; the forward normalizes it
        self.weight = nn.Parameter(weight)
        self.register_parameter(
            "bias",
            nn.Parameter(torch.zeros_like(ref.bias.detach())) if bias and ref.bias is not None else None,
        )
        self.gain = nn.Parameter(torch.ones(())) if learned_gain else None
        self.fan_in = weight.numel() // weight.shape[self._unit_dim]
        if mode == "initial":
            self.register_buffer("target_norm", weight.norm().reshape(()).clone())
        self.project_()

    # -- norms ------------------------------------------------------------------------------
    def row_norms(self, weight: torch.Tensor | None = None) -> torch.Tensor:
        """``||w||`` per output unit, shaped to broadcast against ``weight``."""
        w = self.weight if weight is None else weight
        return torch.norm_except_dim(w, 2, self._unit_dim)

    def promised_norm(self) -> float:
        """The norm :meth:`project_` restores: per row (forced: sqrt(fan_in); sphere: 1) or of the tensor."""
        if self.mode == "forced":
            return math.sqrt(self.fan_in)
        if self.mode == "sphere":
            return 1.0
        return float(self.target_norm)

    @torch.no_grad()
    def project_(self) -> None:
        """Put the stored weight back on its norm set, in place (after every optimizer step)."""
        w = self.weight
        if self.mode == "initial":
            w.mul_(self.target_norm / w.norm().clamp_min(_TINY))
        else:
            w.mul_(self.promised_norm() / self.row_norms().clamp_min(_TINY))

    def effective_weight(self) -> torch.Tensor:
        """The weight the forward pass applies (differentiable)."""
        w = self.weight
        if self.mode == "forced":
            w = w / self.row_norms().clamp_min(_TINY)
            if self.gain is not None:
                w = w * self.gain
        return w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._op(x, self.effective_weight(), self.bias)

    def _op(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        gain = ", learned_gain=True" if self.gain is not None else ""
        return f"mode={self.mode}, weight={tuple(self.weight.shape)}, bias={self.bias is not None}{gain}"


class ProjectedLinear(ProjectedMixin):
    """``nn.Linear`` with a projected weight (one row per output unit)."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, *, mode: str, learned_gain: bool = False
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._setup(nn.Linear(in_features, out_features, bias=bias), mode, bias, learned_gain)

    def _op(self, x, weight, bias):
        return F.linear(x, weight, bias)


class ProjectedConv2d(ProjectedMixin):
    """``nn.Conv2d`` with a projected weight (one row per output channel)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
        *, mode: str, learned_gain: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        ref = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.stride, self.padding = ref.stride, ref.padding
        self._setup(ref, mode, bias, learned_gain)

    def _op(self, x, weight, bias):
        return F.conv2d(x, weight, bias, self.stride, self.padding)


class ProjectedConvTranspose2d(ProjectedMixin):
    """``nn.ConvTranspose2d`` with a projected weight, normalized per *output* channel (weight dim 1)."""

    _unit_dim = 1

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
        bias: bool = True, *, mode: str, learned_gain: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        ref = nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size, stride, padding, output_padding, bias=bias
        )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.stride, self.padding, self.output_padding = ref.stride, ref.padding, ref.output_padding
        self._setup(ref, mode, bias, learned_gain)

    def _op(self, x, weight, bias):
        return F.conv_transpose2d(x, weight, bias, self.stride, self.padding, self.output_padding)


class SphereScaler(nn.Module):
    """SimbaV2's feature side: ``s * x / ||x||`` -- features put on the unit sphere, then a learned scale.

    ``x`` is normalized over its features (``(N, F)``) or, for maps ``(N, C, H, W)``, over channels at each
    position (as pixel norm does). ``s`` is per feature/channel; stored as ``scaler`` (init 1) and applied as
    ``sqrt(F) * scaler``, SimbaV2's split of a scaler into a parameter and a fixed forward factor, with the
    factor chosen here so the features start at unit RMS (a unit vector of F features has RMS 1/sqrt(F)).
    """

    def __init__(self, features: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.features, self.eps = features, eps
        self.scaler = nn.Parameter(torch.ones(features))
        self.forward_scale = math.sqrt(features)

    @staticmethod
    def sphere(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
        """``x / ||x||`` over features (dim -1 for vectors, the channel dim 1 for maps)."""
        dim = 1 if x.dim() > 2 else -1
        return x / torch.linalg.vector_norm(x, dim=dim, keepdim=True).clamp_min(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.sphere(x, self.eps)
        scale = self.scaler * self.forward_scale
        return z * (scale.view(1, -1, 1, 1) if x.dim() == 4 else scale)

    def extra_repr(self) -> str:
        return f"{self.features}"
