"""The normalization factory: one object per norm kind, asked for layers.

    norm = make_norm("weight", ddi=True)
    layer = norm.linear(8, 256)          # a WN linear; for "batch" a Linear followed by BatchNorm1d
    norm.initialize(model, batch)        # data-dependent init where the kind needs it, else a no-op

Weight-reparameterizing kinds (weight, spectral) return the wrapped layer; activation-normalizing
kinds (batch, layer, group, batch_renorm) return ``Sequential(layer=..., norm=...)``. Layers asked
for with ``normalize=False`` (output layers) are plain torch layers for every kind.
"""

from __future__ import annotations

import difflib
import inspect
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from .weightnorm import arm_ddi

__all__ = [
    "Norm",
    "NormError",
    "register_norm",
    "make_norm",
    "available_norms",
    "norm_aliases",
    "initialize",
]


class NormError(ValueError):
    """A norm was asked for something it cannot be or do (unknown name, bad option, unsupported layer)."""


_REGISTRY: dict[str, type[Norm]] = {}
# Short names for common option sets, usable anywhere a norm name is (suites, CLI).
_ALIASES: dict[str, tuple[str, dict[str, Any]]] = {}


def register_norm(cls: type[Norm]) -> type[Norm]:
    """Class decorator: make a ``Norm`` subclass available to :func:`make_norm` under ``cls.name``."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__} needs a class attribute 'name'")
    _REGISTRY[cls.name] = cls
    for alias, options in cls.aliases.items():
        _ALIASES[alias] = (cls.name, dict(options))
    return cls


def available_norms() -> list[str]:
    """Registered norm names followed by aliases, in registration order."""
    return list(_REGISTRY) + list(_ALIASES)


def norm_aliases() -> dict[str, tuple[str, dict[str, Any]]]:
    """Alias -> (norm name, options), e.g. ``weight_ddi -> ("weight", {"ddi": True})``."""
    return dict(_ALIASES)


def make_norm(name: str, **options: Any) -> Norm:
    """Build the norm registered as ``name`` (or an alias) with ``options``.

    Raises :class:`NormError` (a ``ValueError``) naming the known kinds for an unknown name, and the
    accepted options for an unknown option.
    """
    if isinstance(name, Norm):
        return name
    if name in _ALIASES:
        base, preset = _ALIASES[name]
        return _REGISTRY[base](**{**preset, **options})
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), available_norms(), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise NormError(f"unknown norm '{name}'{hint}; known: {', '.join(available_norms())}")
    cls = _REGISTRY[name]
    accepted = cls.option_names()
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise NormError(
            f"norm '{name}' has no option {', '.join(repr(u) for u in unknown)}; "
            f"options: {', '.join(accepted) or '(none)'}"
        )
    return cls(**options)


def initialize(model: nn.Module, batch: Any, forward: Callable[[nn.Module, Any], Any] | None = None) -> int:
    """Data-dependent init of every WN layer in ``model`` that was built with ``ddi=True``.

    Runs one no-grad forward pass on ``batch`` (``model(batch)``; a tuple is unpacked, a dict passed as
    keywords; or ``forward(model, batch)`` when given). Each armed layer sets its ``g`` and ``b`` so that
    its pre-activations have mean 0 and variance 1 on the batch, then passes the standardized values on,
    so later layers are initialized on what they will really see. Returns the number of layers set;
    0 (and no forward pass) when nothing needs data-dependent init.
    """
    armed = arm_ddi(model)
    if not armed:
        return 0
    try:
        with torch.no_grad():
            if forward is not None:
                forward(model, batch)
            elif isinstance(batch, Mapping):
                model(**batch)
            elif isinstance(batch, tuple | list):
                model(*batch)
            else:
                model(batch)
    finally:
        missed = [m for m in armed if m._ddi_armed]
        for m in missed:
            m._ddi_armed = False
    if missed:
        raise NormError(
            f"data-dependent init: {len(missed)} of {len(armed)} WN layers saw no data in the forward pass; "
            "pass forward=... that runs every network you want initialized"
        )
    return len(armed)


class Norm:
    """Base class: builds layers with this kind of normalization. Subclasses are one small class each.

    Subclasses set ``name``, ``summary`` and the capability flags, take their options as keyword-only
    ``__init__`` arguments, and override the ``_linear``/``_conv2d``/``_conv_transpose2d``/``_lstm`` hooks.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    #: The output for one sample depends on the other samples in the batch (in train mode).
    uses_batch_statistics: ClassVar[bool] = False
    #: Can normalize the weights/activations inside an LSTM.
    supports_recurrent: ClassVar[bool] = False
    #: Aliases registered with this kind: alias -> options.
    aliases: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def option_names(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]

    def options(self) -> dict[str, Any]:
        """This instance's options (all of them, defaults included)."""
        return {k: getattr(self, k) for k in self.option_names()}

    @property
    def label(self) -> str:
        """Short display name: the alias if one matches, else ``name`` plus non-default options."""
        for alias, (base, preset) in _ALIASES.items():
            if base == self.name and self._non_default() == preset:
                return alias
        extra = self._non_default()
        if not extra:
            return self.name
        return f"{self.name}[{','.join(f'{k}={v}' for k, v in sorted(extra.items()))}]"

    def _non_default(self) -> dict[str, Any]:
        params = inspect.signature(type(self).__init__).parameters
        return {k: v for k, v in self.options().items() if params[k].default != v}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"make_norm({self.name!r}{', ' if opts else ''}{opts})"

    # -- public builders ----------------------------------------------------------------------
    def linear(
        self, in_features: int, out_features: int, *, bias: bool = True, normalize: bool = True
    ) -> nn.Module:
        """A fully connected layer with this norm (a plain ``nn.Linear`` when ``normalize=False``)."""
        if not normalize:
            return nn.Linear(in_features, out_features, bias=bias)
        return self._linear(in_features, out_features, bias)

    def conv2d(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        *,
        bias: bool = True,
        normalize: bool = True,
    ) -> nn.Module:
        """A 2-d convolution with this norm (plain ``nn.Conv2d`` when ``normalize=False``)."""
        if not normalize:
            return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
        return self._conv2d(in_channels, out_channels, kernel_size, stride, padding, bias)

    def conv_transpose2d(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        output_padding: int | tuple[int, int] = 0,
        *,
        bias: bool = True,
        normalize: bool = True,
    ) -> nn.Module:
        """A transposed 2-d convolution with this norm, normalized per output channel."""
        if not normalize:
            return nn.ConvTranspose2d(
                in_channels, out_channels, kernel_size, stride, padding, output_padding, bias=bias
            )
        return self._conv_transpose2d(
            in_channels, out_channels, kernel_size, stride, padding, output_padding, bias
        )

    def lstm(
        self, input_size: int, hidden_size: int, num_layers: int = 1, *, batch_first: bool = False
    ) -> nn.Module:
        """An LSTM with this norm inside; same call signature as ``nn.LSTM``."""
        return self.wrap_lstm(nn.LSTM(input_size, hidden_size, num_layers, batch_first=batch_first))

    def wrap_lstm(self, lstm: nn.LSTM) -> nn.Module:
        """Put this norm into an existing ``nn.LSTM`` (e.g. the one sb3-contrib's RecurrentPPO builds).

        Returns the module to use in its place. Norms that use batch statistics refuse: within a
        recurrent step they would mix samples and time steps.
        """
        if not self.supports_recurrent:
            raise NormError(
                f"norm '{self.label}' cannot go into a recurrent layer: it "
                + ("normalizes with minibatch statistics, which an LSTM step would mix across samples and time"
                   if self.uses_batch_statistics else "has no recurrent form")
                + f"; recurrent-capable norms: {', '.join(recurrent_norms())}"
            )  # fmt: skip
        if lstm.bidirectional or getattr(lstm, "proj_size", 0):
            raise NormError("only unidirectional LSTMs without projections can be normalized")
        return self._lstm(lstm)

    def mlp(
        self,
        in_features: int,
        hidden_sizes: Sequence[int],
        out_features: int | None = None,
        *,
        activation: type[nn.Module] = nn.ReLU,
        normalize_output: bool = False,
    ) -> nn.Sequential:
        """``[norm.linear -> activation] * len(hidden_sizes)`` then an (unnormalized) output layer."""
        layers: list[nn.Module] = []
        last = in_features
        for width in hidden_sizes:
            layers += [self.linear(last, width), activation()]
            last = width
        if out_features is not None:
            layers.append(self.linear(last, out_features, normalize=normalize_output))
        return nn.Sequential(*layers)

    def initialize(
        self, model: nn.Module, batch: Any, forward: Callable[[nn.Module, Any], Any] | None = None
    ) -> int:
        """Data-dependent init where the model's layers need it (see :func:`initialize`); else a no-op."""
        return initialize(model, batch, forward)

    # -- hooks --------------------------------------------------------------------------------
    def _linear(self, in_features: int, out_features: int, bias: bool) -> nn.Module:
        raise NotImplementedError

    def _conv2d(self, in_ch, out_ch, kernel_size, stride, padding, bias) -> nn.Module:
        raise NotImplementedError

    def _conv_transpose2d(
        self, in_ch, out_ch, kernel_size, stride, padding, output_padding, bias
    ) -> nn.Module:
        raise NotImplementedError

    def _lstm(self, lstm: nn.LSTM) -> nn.Module:
        raise NotImplementedError


class ActivationNorm(Norm):
    """Kinds that normalize a layer's output: the layer is followed by ``_norm1d``/``_norm2d``.

    When the norm subtracts a per-feature mean computed over the batch, the layer's own bias is
    redundant (its gradient is zero), so it is left out.
    """

    absorbs_bias: ClassVar[bool] = False

    def _norm1d(self, features: int) -> nn.Module:
        raise NotImplementedError

    def _norm2d(self, channels: int) -> nn.Module:
        raise NotImplementedError

    def _follow(self, layer: nn.Module, norm: nn.Module) -> nn.Sequential:
        return nn.Sequential(OrderedDict(layer=layer, norm=norm))

    def _linear(self, in_features, out_features, bias):
        layer = nn.Linear(in_features, out_features, bias=bias and not self.absorbs_bias)
        return self._follow(layer, self._norm1d(out_features))

    def _conv2d(self, in_ch, out_ch, kernel_size, stride, padding, bias):
        layer = nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, bias=bias and not self.absorbs_bias)
        return self._follow(layer, self._norm2d(out_ch))

    def _conv_transpose2d(self, in_ch, out_ch, kernel_size, stride, padding, output_padding, bias):
        layer = nn.ConvTranspose2d(
            in_ch, out_ch, kernel_size, stride, padding, output_padding, bias=bias and not self.absorbs_bias
        )
        return self._follow(layer, self._norm2d(out_ch))


def recurrent_norms() -> list[str]:
    """Registered names of the kinds that can go inside an LSTM."""
    return [name for name, cls in _REGISTRY.items() if cls.supports_recurrent]
