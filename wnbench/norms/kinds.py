"""The registered norm kinds, one small class each. ``wnbench norms`` lists them."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import ClassVar

from torch import nn

from .factory import ActivationNorm, Norm, NormError, register_norm
from .layers import BatchNormLSTM, LayerNormLSTM, MeanOnlyBatchNorm, PerChannel
from .projected import MPSiLU, ProjectedConv2d, ProjectedConvTranspose2d, ProjectedLinear, SphereScaler
from .spectral import spectral_norm
from .weightnorm import _LSTM_DDI_ATTR, WNLSTM, WNConv2d, WNConvTranspose2d, WNLinear

LinearFactory = Callable[[int, int], nn.Module]


def _lstm_weight_names(lstm: nn.LSTM) -> list[str]:
    return [n for n in lstm._flat_weights_names if n.startswith("weight_")]


def _check_positive(kind: str, option: str, value: float) -> None:
    if not value > 0:
        raise NormError(f"norm '{kind}': option '{option}' must be > 0, got {value!r}")


#: How the training code that drives a batch-statistics layer runs it (the layers do not act on it; SB3 policies
#: in wnbench.rl read it): "sb3", minibatch statistics in train mode and running ones in eval, as torch does; or
#: "running", running statistics always, refreshed by explicit no-grad passes. Part of the norm so each is an arm.
BN_MODES = ("sb3", "running")


def _check_bn_mode(kind: str, value: str) -> str:
    if value not in BN_MODES:
        raise NormError(
            f"norm '{kind}': option 'bn_mode' must be one of {', '.join(BN_MODES)}, got {value!r}"
        )
    return value


#: How the critic pass inside SAC/TD3/CrossQ's actor update runs a critic's batch-statistics layers (the layers do
#: not act on it; wnbench.rl reads it): "sb3" as the algorithm ships, "eval" (running statistics, untouched: MA-BN)
#: or "train" (minibatch statistics). Part of the norm so each is an arm.
CRITIC_MODES = ("sb3", "eval", "train")


def _check_critic_mode(kind: str, value: str) -> str:
    if value not in CRITIC_MODES:
        raise NormError(
            f"norm '{kind}': option 'critic_mode' must be one of {', '.join(CRITIC_MODES)}, got {value!r}"
        )
    return value


@register_norm
class NoNorm(Norm):
    name = "none"
    summary = "no normalization: plain torch layers (the baseline every ratio is taken against)"
    supports_recurrent = True
    role = "none"

    def __init__(self) -> None:
        pass

    def _linear(self, in_features, out_features, bias):
        return nn.Linear(in_features, out_features, bias=bias)

    def _conv2d(self, in_ch, out_ch, kernel_size, stride, padding, bias):
        return nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, bias=bias)

    def _conv_transpose2d(self, in_ch, out_ch, kernel_size, stride, padding, output_padding, bias):
        return nn.ConvTranspose2d(in_ch, out_ch, kernel_size, stride, padding, output_padding, bias=bias)

    def _lstm(self, lstm):
        return lstm


@register_norm
class BatchNorm(ActivationNorm):
    name = "batch"
    summary = (
        "batch normalization (Ioffe & Szegedy 2015): minibatch statistics in train mode, running ones in eval"
    )
    uses_batch_statistics = True
    absorbs_bias = True
    supports_recurrent = True  # as recurrent BN (Cooijmans et al. 2017), statistics per time step

    def __init__(
        self,
        *,
        momentum: float = 0.1,
        eps: float = 1e-5,
        t_max: int = 100,
        bn_mode: str = "sb3",
        critic_mode: str = "sb3",
    ) -> None:
        _check_positive(self.name, "eps", eps)
        if not (isinstance(t_max, int) and t_max >= 1):
            raise NormError(f"norm 'batch': option 't_max' must be an integer >= 1, got {t_max!r}")
        self.momentum, self.eps, self.t_max = momentum, eps, t_max
        self.bn_mode = _check_bn_mode(self.name, bn_mode)
        self.critic_mode = _check_critic_mode(self.name, critic_mode)

    def _norm1d(self, features):
        return nn.BatchNorm1d(features, eps=self.eps, momentum=self.momentum)

    def _norm2d(self, channels):
        return nn.BatchNorm2d(channels, eps=self.eps, momentum=self.momentum)

    def _recurrent_cell(self, lstm: nn.LSTM, linear: LinearFactory | None = None) -> nn.Module:
        extra = {"linear": linear} if linear is not None else {}
        return BatchNormLSTM(
            lstm.input_size, lstm.hidden_size, lstm.num_layers, batch_first=lstm.batch_first,
            t_max=self.t_max, momentum=self.momentum, eps=self.eps, **extra,
        )  # fmt: skip

    def _lstm(self, lstm):
        return self._recurrent_cell(lstm)


@register_norm
class BatchRenorm(ActivationNorm):
    name = "batch_renorm"
    summary = "batch renormalization (Ioffe 2017) as CrossQ uses it (sb3-contrib BatchRenorm1d): running stats after warm-up"
    uses_batch_statistics = True
    absorbs_bias = True

    def __init__(
        self,
        *,
        momentum: float = 0.01,
        eps: float = 1e-3,
        warmup_steps: int = 100_000,
        bn_mode: str = "sb3",
        critic_mode: str = "sb3",
    ) -> None:
        _check_positive(self.name, "eps", eps)
        self.momentum, self.eps, self.warmup_steps = momentum, eps, warmup_steps
        self.bn_mode = _check_bn_mode(self.name, bn_mode)
        self.critic_mode = _check_critic_mode(self.name, critic_mode)

    def _norm1d(self, features):
        from sb3_contrib.common.torch_layers import BatchRenorm1d  # lazy: sb3 is heavy to import

        return BatchRenorm1d(features, eps=self.eps, momentum=self.momentum, warmup_steps=self.warmup_steps)

    def _norm2d(self, channels):
        return PerChannel(self._norm1d(channels))


@register_norm
class LayerNorm(ActivationNorm):
    name = "layer"
    summary = "layer normalization (Ba et al. 2016): per-sample statistics over features (C,H,W for convs)"
    supports_recurrent = True

    def __init__(self, *, eps: float = 1e-5) -> None:
        _check_positive(self.name, "eps", eps)
        self.eps = eps

    def _norm1d(self, features):
        return nn.LayerNorm(features, eps=self.eps)

    def _norm2d(self, channels):
        return nn.GroupNorm(1, channels, eps=self.eps)  # one group = LN over (C, H, W), per-channel affine

    def _recurrent_cell(self, lstm: nn.LSTM, linear: LinearFactory | None = None) -> nn.Module:
        extra = {"linear": linear} if linear is not None else {}
        return LayerNormLSTM(
            lstm.input_size,
            lstm.hidden_size,
            lstm.num_layers,
            batch_first=lstm.batch_first,
            eps=self.eps,
            **extra,
        )

    def _lstm(self, lstm):
        return self._recurrent_cell(lstm)


@register_norm
class GroupNorm(ActivationNorm):
    name = "group"
    summary = "group normalization (Wu & He 2018): per-sample statistics over groups of features/channels"

    def __init__(self, *, groups: int = 8, eps: float = 1e-5) -> None:
        if not (isinstance(groups, int) and groups >= 1):
            raise NormError(f"norm 'group': option 'groups' must be a positive integer, got {groups!r}")
        _check_positive(self.name, "eps", eps)
        self.groups, self.eps = groups, eps

    def _group_norm(self, channels: int) -> nn.GroupNorm:
        if channels % self.groups:
            raise NormError(
                f"norm 'group': {self.groups} groups do not divide {channels} channels; "
                f"choose groups from the divisors of {channels}"
            )
        return nn.GroupNorm(self.groups, channels, eps=self.eps)

    _norm1d = _group_norm
    _norm2d = _group_norm


@register_norm
class WeightNorm(Norm):
    name = "weight"
    summary = "weight normalization (Salimans & Kingma 2016): w = g*v/||v||; ddi=True adds their data-dependent init"
    supports_recurrent = True
    aliases = {"weight_ddi": {"ddi": True}}

    def __init__(self, *, ddi: bool = False, init_scale: float = 1.0, v_std: float | None = None) -> None:
        _check_positive(self.name, "init_scale", init_scale)
        if v_std is not None:
            _check_positive(self.name, "v_std", v_std)
        self.ddi, self.init_scale, self.v_std = bool(ddi), init_scale, v_std

    def _wn(self) -> dict:
        return {"ddi": self.ddi, "init_scale": self.init_scale, "v_std": self.v_std}

    def _linear(self, in_features, out_features, bias):
        return WNLinear(in_features, out_features, bias=bias, **self._wn())

    def _conv2d(self, in_ch, out_ch, kernel_size, stride, padding, bias):
        return WNConv2d(in_ch, out_ch, kernel_size, stride, padding, bias=bias, **self._wn())

    def _conv_transpose2d(self, in_ch, out_ch, kernel_size, stride, padding, output_padding, bias):
        return WNConvTranspose2d(
            in_ch, out_ch, kernel_size, stride, padding, output_padding, bias=bias, **self._wn()
        )

    def _lstm(self, lstm):
        # One norm per gate unit (row of weight_ih / weight_hh), g = ||v|| at first (the LSTM as it was), with
        # a cached no-grad path (WNLSTM). With ddi=True, wnbench.norms.weightnorm.initialize_lstm
        # data-initializes the input-to-hidden weights.
        wn = WNLSTM(lstm)
        if self.ddi:
            setattr(wn, _LSTM_DDI_ATTR, self.init_scale)
        return wn


@register_norm
class MeanOnly(ActivationNorm):
    name = "meanonly"
    summary = (
        "mean-only batch norm (Salimans & Kingma 2016, sec. 2.2): subtracts the minibatch mean, learns a bias"
    )
    uses_batch_statistics = True
    absorbs_bias = True
    # The paper's recommended combination, with its data-dependent init (their code initializes g from data).
    aliases = {"weight_meanonly": {"name": "weight+meanonly", "ddi": True}}

    def __init__(self, *, momentum: float = 0.1, bn_mode: str = "sb3", critic_mode: str = "sb3") -> None:
        self.momentum = momentum
        self.bn_mode = _check_bn_mode(self.name, bn_mode)
        self.critic_mode = _check_critic_mode(self.name, critic_mode)

    def _norm1d(self, features):
        return MeanOnlyBatchNorm(features, momentum=self.momentum)

    _norm2d = _norm1d


@register_norm
class SpectralNorm(Norm):
    name = "spectral"
    summary = "spectral normalization (Miyato et al. 2018): weight divided by its largest singular value (power iteration)"
    supports_recurrent = True

    #: ``layers``: every hidden layer, or only the last one (Gogianu et al. 2021; Bjorck et al. 2021 put SN on
    #: one layer of the critic). Honoured by :meth:`Norm.mlp`; a layer asked for alone is always normalized.
    LAYERS = ("all", "last_hidden")

    def __init__(self, *, n_power_iterations: int = 1, layers: str = "all") -> None:
        if not (isinstance(n_power_iterations, int) and n_power_iterations >= 1):
            raise NormError(
                f"norm 'spectral': option 'n_power_iterations' must be an integer >= 1, got {n_power_iterations!r}"
            )
        if layers not in self.LAYERS:
            raise NormError(
                f"norm 'spectral': option 'layers' must be one of {', '.join(self.LAYERS)}, got {layers!r}"
            )
        self.n_power_iterations, self.layers = n_power_iterations, layers

    def for_hidden_layer(self, index: int, count: int) -> Norm:
        if self.layers == "last_hidden" and index != count - 1:
            return NoNorm()
        return self

    def _wrap(self, layer: nn.Module, name: str = "weight") -> nn.Module:
        # Our parametrization: torch's, plus a power iteration in eval mode when the weight changed, so
        # target networks (always in eval mode) stay normalized. See wnbench/norms/spectral.py.
        return spectral_norm(layer, name=name, n_power_iterations=self.n_power_iterations)

    def _linear(self, in_features, out_features, bias):
        return self._wrap(nn.Linear(in_features, out_features, bias=bias))

    def _conv2d(self, in_ch, out_ch, kernel_size, stride, padding, bias):
        return self._wrap(nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, bias=bias))

    def _conv_transpose2d(self, in_ch, out_ch, kernel_size, stride, padding, output_padding, bias):
        return self._wrap(
            nn.ConvTranspose2d(in_ch, out_ch, kernel_size, stride, padding, output_padding, bias=bias)
        )

    def _lstm(self, lstm):
        for weight_name in _lstm_weight_names(lstm):
            self._wrap(lstm, weight_name)
        return lstm


class _ProjectedKind(Norm):
    """Kinds whose layers are :mod:`wnbench.norms.projected` layers, optionally followed by a feature norm.

    Training must call :func:`wnbench.norms.attach_projection` (or ``project_``) after each optimizer step;
    ``wnbench.gen`` and the RL policies do. Nothing to initialize from data (``initialize`` is a no-op).
    """

    mode: ClassVar[str] = ""
    keep_bias: ClassVar[bool] = True

    def _options(self) -> dict:
        return {"mode": self.mode}

    def _follow(self, layer: nn.Module, features: int, conv: bool) -> nn.Module:
        return layer

    def _linear(self, in_features, out_features, bias):
        layer = ProjectedLinear(in_features, out_features, bias and self.keep_bias, **self._options())
        return self._follow(layer, out_features, False)

    def _conv2d(self, in_ch, out_ch, kernel_size, stride, padding, bias):
        layer = ProjectedConv2d(
            in_ch, out_ch, kernel_size, stride, padding, bias and self.keep_bias, **self._options()
        )
        return self._follow(layer, out_ch, True)

    def _conv_transpose2d(self, in_ch, out_ch, kernel_size, stride, padding, output_padding, bias):
        layer = ProjectedConvTranspose2d(
            in_ch, out_ch, kernel_size, stride, padding, output_padding, bias and self.keep_bias,
            **self._options(),
        )  # fmt: skip
        return self._follow(layer, out_ch, True)


@register_norm
class ForcedWeight(_ProjectedKind):
    name = "forced_weight"
    summary = (
        "forced weight normalization (EDM2, Karras et al. 2024): forward uses w/||w|| per unit, stored rows "
        "projected back to norm sqrt(fan_in) after every step; mp=True adds EDM2's mp_silu"
    )
    mode = "forced"
    aliases = {"forced_weight_mp": {"mp": True}}

    def __init__(self, *, mp: bool = False, learned_gain: bool = False) -> None:
        """``mp``: EDM2's magnitude-preserving SiLU (silu/0.596) replaces the network's nonlinearity after
        every normalized layer. ``learned_gain``: a learned scalar gain per layer (init 1; EDM2 learns gains
        where it wants a scale back). EDM2's mp_sum/mp_cat are for residual sums and concatenations, which no
        wnbench network has; EDM2 has no biases (it feeds a constant channel): layers here keep theirs, zero at
        init, since a constant input channel is the same function. Composes with an activation norm
        (``forced_weight+layer``), though EDM2 itself removes them."""
        self.mp, self.learned_gain = bool(mp), bool(learned_gain)

    def _options(self) -> dict:
        return {"mode": self.mode, "learned_gain": self.learned_gain}

    def activation(self, default: Callable[[], nn.Module]) -> nn.Module:
        return MPSiLU() if self.mp else default()


@register_norm
class NaP(_ProjectedKind):
    name = "nap"
    summary = (
        "normalize-and-project (NaP, Lyle et al. 2024): LayerNorm before each nonlinearity, each layer's "
        "weight projected back to its initial norm after every step (constant effective learning rate)"
    )
    mode = "initial"
    role = "complete"

    def __init__(self, *, eps: float = 1e-5) -> None:
        """Variant followed: one norm per layer (the Frobenius norm of the whole weight, its value at init,
        kept in the buffer ``target_norm``), not per row; biases, LayerNorm's gain and offset are kept and left
        unconstrained (NaP projects weights only). The bias matters: without it LayerNorm(W c x) = LayerNorm(W x)
        for every c > 0, so a network's first layer could not see its input's magnitude (a 2-D point's distance
        from the origin, a cart's velocity). Convolutions get LN over (C, H, W) (``GroupNorm(1, C)``), as the
        ``layer`` kind does."""
        _check_positive(self.name, "eps", eps)
        self.eps = eps

    def _follow(self, layer, features, conv):
        norm = nn.GroupNorm(1, features, eps=self.eps) if conv else nn.LayerNorm(features, eps=self.eps)
        return nn.Sequential(OrderedDict(layer=layer, norm=norm))


@register_norm
class Hyperspherical(_ProjectedKind):
    name = "hyperspherical"
    summary = (
        "hyperspherical normalization (SimbaV2, Lee et al. 2025): weight rows projected onto the unit sphere "
        "after every step, features l2-normalized then scaled by a learned per-feature scaler"
    )
    mode = "sphere"
    role = "complete"

    def __init__(self) -> None:
        """Each layer is ``s * normalize(W x + b)`` with unit-norm rows of ``W`` (SimbaV2's HyperDense and
        Scaler); convolutions normalize over channels at each position. The bias (zero at init, unconstrained)
        stands in for SimbaV2's input shift: its embedder appends a constant before normalizing, because
        ``normalize(W c x) = normalize(W x)`` for every c > 0 and a first layer without a constant input is
        blind to its input's magnitude (a bias is a constant input channel's weight). Not reproduced, as they
        are not norms: SimbaV2's distributional critic, reward scaling and LERP residual blocks (the factory
        builds layers, not architectures)."""

    def _follow(self, layer, features, conv):
        return nn.Sequential(OrderedDict(layer=layer, norm=SphereScaler(features)))
