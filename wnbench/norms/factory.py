"""The normalization factory: one object per norm kind, asked for layers.

    norm = make_norm("weight", ddi=True)
    layer = norm.linear(8, 256)          # a WN linear; for "batch" a Linear followed by BatchNorm1d
    norm.initialize(model, batch)        # data-dependent init where the kind needs it, else a no-op

Weight-reparameterizing kinds (weight, spectral) return the wrapped layer; activation-normalizing
kinds (batch, layer, group, batch_renorm, meanonly) return ``Sequential(layer=..., norm=...)``. Layers
asked for with ``normalize=False`` (output layers) are plain torch layers for every kind.

Compositions: a spec combines one weight reparameterization (``none``, ``weight``, ``spectral``) with one
activation norm (``none``, ``batch``, ``batch_renorm``, ``layer``, ``group``, ``meanonly``) and a placement
for the latter: ``post`` (after the layer, the default) or ``pre`` (on the layer's input, the observation
included, as sb3-contrib's CrossQ places batch renorm)::

    make_norm("weight+batch_renorm", ddi=True, placement="pre")   # CrossQ + WN (Palenicek et al. 2025)
    make_norm("batch", placement="pre")                            # CrossQ's own placement, BN
    make_norm("weight_meanonly")                                    # = weight+meanonly with DDI (the WN paper)

Options go to the part that takes them; a single name keeps its meaning (``batch`` = ``none+batch``).
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
    "ComposedNorm",
    "NormError",
    "PLACEMENTS",
    "COMPOSITION_GRAMMAR",
    "register_norm",
    "make_norm",
    "available_norms",
    "norm_aliases",
    "initialize",
    "norm_state_buffers",
]

PLACEMENTS = ("post", "pre")


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
        options = dict(options)
        _ALIASES[alias] = (options.pop("name", cls.name), options)
    return cls


def available_norms() -> list[str]:
    """Registered norm names followed by aliases, in registration order."""
    return list(_REGISTRY) + list(_ALIASES)


def norm_aliases() -> dict[str, tuple[str, dict[str, Any]]]:
    """Alias -> (norm name, options), e.g. ``weight_ddi -> ("weight", {"ddi": True})``."""
    return dict(_ALIASES)


def make_norm(name: str, **options: Any) -> Norm:
    """Build the norm named ``name`` (a kind, an alias or a composition ``weight+batch``) with ``options``.

    Raises :class:`NormError` (a ``ValueError``) naming the part at fault: an unknown kind (with the known
    ones), an option no part takes (with the accepted ones), two activation norms, a bad placement.
    Every kind also takes ``init_gain`` (a careless init of its hidden layers: :mod:`wnbench.norms.init_gain`).
    """
    if isinstance(name, Norm):
        return name
    spec = str(name)
    if spec in _ALIASES:
        base, preset = _ALIASES[spec]
        spec, options = base, {**preset, **options}
    options = dict(options)
    gain = options.pop("init_gain", 1.0)  # every kind takes it: wnbench.norms.init_gain
    parts = [p.strip() for p in spec.split("+")]
    if len(parts) == 1 and "placement" not in options:
        norm = _make_single(spec, options)
    else:
        norm = _make_composed(spec, parts, options)
    from .init_gain import check_gain

    norm.init_gain = check_gain(str(name), gain)
    return norm


def _kind(name: str, spec: str) -> type[Norm]:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, available_norms(), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        where = f"unknown norm '{name}'" if name == spec else f"norm '{spec}': unknown part '{name}'"
        raise NormError(f"{where}{hint}; known: {', '.join(available_norms())}")
    return _REGISTRY[name]


def _make_single(name: str, options: dict[str, Any]) -> Norm:
    cls = _kind(name, name)
    accepted = cls.option_names()
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise NormError(
            f"norm '{name}' has no option {', '.join(repr(u) for u in unknown)}; "
            f"options: {', '.join(accepted) or '(none)'}"
        )
    return cls(**options)


COMPOSITION_GRAMMAR = (
    "[WEIGHT+]ACTIVATION or WEIGHT, with WEIGHT in {none, weight, spectral, forced_weight} and ACTIVATION in "
    "{none, batch, batch_renorm, layer, group, meanonly} (nap and hyperspherical stand alone); option placement: post (after the layer, default) "
    "| pre (on its input, the observation included, as CrossQ); option init_gain (every kind, default 1): the hidden "
    "layers' initial weights multiplied by it, a careless init (e.g. weight[init_gain=10]); other options go to the "
    "part that takes them, e.g. {name: weight+batch_renorm, ddi: true, placement: pre}"
)


def _make_composed(spec: str, parts: list[str], options: dict[str, Any]) -> Norm:
    if len(parts) > 2 or not all(parts):
        raise NormError(f"norm '{spec}': a composition is {COMPOSITION_GRAMMAR}")
    classes = [_kind(p, spec) for p in parts]
    whole = [c for c in classes if c.role == "complete"]
    if whole:
        raise NormError(
            f"norm '{spec}': part '{whole[0].name}' brings its own weight projection and feature normalization, "
            f"so it composes with nothing; use '{whole[0].name}' alone (a composition is {COMPOSITION_GRAMMAR})"
        )
    weights = [c for c in classes if c.role == "weight"]
    activations = [c for c in classes if c.role == "activation"]
    if len(activations) > 1:
        raise NormError(
            f"norm '{spec}': two activation norms ({', '.join(c.name for c in activations)}); "
            f"a composition is {COMPOSITION_GRAMMAR}"
        )
    if len(weights) > 1:
        raise NormError(
            f"norm '{spec}': two weight reparameterizations ({', '.join(c.name for c in weights)}); "
            f"a composition is {COMPOSITION_GRAMMAR}"
        )
    weight_cls = weights[0] if weights else _REGISTRY["none"]
    act_cls = activations[0] if activations else _REGISTRY["none"]
    options = dict(options)
    placement = options.pop("placement", "post")
    if placement not in PLACEMENTS:
        raise NormError(
            f"norm '{spec}': option 'placement' must be one of {', '.join(PLACEMENTS)}, got {placement!r}"
        )
    weight_opts = {k: v for k, v in options.items() if k in weight_cls.option_names()}
    act_opts = {k: v for k, v in options.items() if k in act_cls.option_names()}
    unknown = sorted(set(options) - set(weight_opts) - set(act_opts))
    if unknown:
        accepted = [*weight_cls.option_names(), *act_cls.option_names(), "placement"]
        owners = ", ".join(f"'{c.name}'" for c in (weight_cls, act_cls) if c.name != "none")
        belongs = {u: [n for n, c in _REGISTRY.items() if u in c.option_names()] for u in unknown}
        hint = "".join(
            f" ('{u}' is an option of {', '.join(repr(n) for n in ns)})" for u, ns in belongs.items() if ns
        )
        raise NormError(
            f"norm '{spec}': no part ({owners}) takes option {', '.join(repr(u) for u in unknown)}; "
            f"options: {', '.join(accepted)}{hint}"
        )
    weight = _make_single(weight_cls.name, weight_opts)
    act = _make_single(act_cls.name, act_opts)
    if act_cls.name == "none":
        if placement != "post":
            raise NormError(
                f"norm '{spec}': option 'placement' places an activation norm, and '{spec}' has none"
            )
        return weight
    if weight_cls.name == "none" and placement == "post":
        return act
    return ComposedNorm(weight, act, placement)  # type: ignore[arg-type]


def norm_state_buffers(module: nn.Module) -> list[torch.Tensor]:
    """Every floating-point buffer of ``module``, in a stable order: the state norms keep outside their
    parameters (BN and mean-only BN running statistics, batch renorm's, spectral norm's power-iteration
    vectors). The one list a target network must receive besides the parameters: hand it to SB3's
    ``*batch_norm_stats`` copies (``wnbench.rl.policies.NormCallback`` does) or copy it yourself."""
    return [b for b in module.buffers() if b.is_floating_point()]


def initialize(model: nn.Module, batch: Any, forward: Callable[[nn.Module, Any], Any] | None = None) -> int:
    """Data-dependent init of every WN layer in ``model`` that was built with ``ddi=True``.

    Runs one no-grad forward pass on ``batch`` (``model(batch)``; a tuple is unpacked, a dict passed as
    keywords; or ``forward(model, batch)`` when given). Each armed layer sets its ``g`` and ``b`` so that
    its pre-activations have mean 0 and variance 1 on the batch, then passes the standardized values on,
    so later layers are initialized on what they will really see. Returns the number of layers set;
    0 (and no forward pass) when nothing needs data-dependent init.
    """
    from .init_gain import apply_init_gain

    apply_init_gain(model)  # a careless init (option init_gain) comes before the data sets g and b
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
    #: What the kind is in a composition: "weight" (reparameterizes the layer), "activation" (a module
    #: beside the layer), "none" (either part, doing nothing) or "complete" (both at once, composes with
    #: nothing: nap, hyperspherical).
    role: ClassVar[str] = "weight"
    #: Where the activation norm sits: "post" (after the layer) or "pre" (on its input).
    placement: str = "post"
    #: The factor on the hidden layers' initial weights (option ``init_gain`` of every kind, set by
    #: :func:`make_norm`; applied by :func:`wnbench.norms.init_gain.apply_init_gain`). 1: the kind's own init.
    init_gain: float = 1.0

    @classmethod
    def option_names(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]

    def options(self) -> dict[str, Any]:
        """This instance's options (all of them, defaults included; ``init_gain`` only when it is not 1)."""
        return {k: getattr(self, k) for k in self.option_names()} | self._gain_option()

    def _gain_option(self) -> dict[str, float]:
        return {"init_gain": self.init_gain} if self.init_gain != 1.0 else {}

    @property
    def label(self) -> str:
        """Short display name: the alias if one matches, else ``name`` plus non-default options; a careless
        init adds ``init_gain`` (``weight_ddi[init_gain=10]``, ``batch[bn_mode=running,init_gain=0.1]``)."""
        extra = self._non_default()
        base = next((a for a, (b, preset) in _ALIASES.items() if b == self.name and extra == preset), None)
        if base is not None:
            extra = {}
        shown = {k: str(v) for k, v in extra.items()}
        if self.init_gain != 1.0:
            shown["init_gain"] = f"{self.init_gain:g}"
        name = base or self.name
        return f"{name}[{','.join(f'{k}={v}' for k, v in sorted(shown.items()))}]" if shown else name

    def _non_default(self) -> dict[str, Any]:
        params = inspect.signature(type(self).__init__).parameters
        return {k: getattr(self, k) for k in self.option_names() if params[k].default != getattr(self, k)}

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
        return self._hidden(self._linear(in_features, out_features, bias))

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
        return self._hidden(self._conv2d(in_channels, out_channels, kernel_size, stride, padding, bias))

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
        return self._hidden(
            self._conv_transpose2d(
                in_channels, out_channels, kernel_size, stride, padding, output_padding, bias
            )
        )

    def _hidden(self, layer: nn.Module) -> nn.Module:
        """A normalized (hidden) layer, marked with this norm's ``init_gain`` (nothing at gain 1)."""
        from .init_gain import mark

        return mark(layer, self.init_gain)

    def lstm(
        self, input_size: int, hidden_size: int, num_layers: int = 1, *, batch_first: bool = False
    ) -> nn.Module:
        """An LSTM with this norm inside; same call signature as ``nn.LSTM``."""
        return self.wrap_lstm(nn.LSTM(input_size, hidden_size, num_layers, batch_first=batch_first))

    def wrap_lstm(self, lstm: nn.LSTM) -> nn.Module:
        """Put this norm into an existing ``nn.LSTM`` (e.g. the one sb3-contrib's RecurrentPPO builds).

        Returns the module to use in its place: the LSTM with WN/SN on its weights, or a :class:`NormLSTM`
        for ``layer`` (Ba et al. 2016) and ``batch`` (recurrent BN with per-time-step statistics,
        Cooijmans et al. 2017), whose ``W_x``/``W_h`` come from the weight part in a composition
        (``weight+layer``). Kinds without a recurrent form (batch renorm, mean-only BN, group) refuse.
        """
        if not self.supports_recurrent:
            reason = "has no recurrent form"
            if self.uses_batch_statistics:
                reason += " (recurrent batch norm, with statistics per time step, is 'batch')"
            if self.placement == "pre":
                reason += " (placement 'pre' is for feed-forward layers)"
            raise NormError(
                f"norm '{self.label}' cannot go into a recurrent layer: it {reason}; "
                f"recurrent-capable norms: {', '.join(recurrent_norms())}"
            )
        if lstm.bidirectional or getattr(lstm, "proj_size", 0):
            raise NormError("only unidirectional LSTMs without projections can be normalized")
        if self.init_gain != 1.0:
            raise NormError(
                f"norm '{self.label}': option 'init_gain' scales feed-forward hidden layers; it is not defined "
                "for recurrent layers (use it without an LSTM)"
            )
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
        """``[norm.linear -> activation] * len(hidden_sizes)`` then an (unnormalized) output layer.

        With ``placement="pre"`` the activation norm sits on every layer's input -- the network's input
        and each hidden activation, the one feeding the output layer (or ending the trunk when there is
        none) included -- which is sb3-contrib CrossQ's layout. Kinds that reparameterize only some layers
        (spectral with ``layers="last_hidden"``) apply it where :meth:`for_hidden_layer` says.
        """
        layers: list[nn.Module] = []
        last = in_features
        for index, width in enumerate(hidden_sizes):
            layers += [
                # a careless init (init_gain) covers every hidden layer, those a kind leaves plain included
                self._hidden(self.for_hidden_layer(index, len(hidden_sizes)).linear(last, width)),
                self.activation(activation),
            ]
            last = width
        if self.placement == "pre" and hidden_sizes:
            layers.append(self.input_norm(last))
        if out_features is not None:
            layers.append(self.linear(last, out_features, normalize=normalize_output))
        return nn.Sequential(*layers)

    def activation(self, default: Callable[[], nn.Module]) -> nn.Module:
        """The nonlinearity to put after a normalized layer: ``default()``, unless the kind brings its own
        (forced_weight with ``mp=True``: EDM2's magnitude-preserving SiLU). Networks ask here, not torch."""
        return default()

    def for_hidden_layer(self, index: int, count: int) -> Norm:
        """The norm for hidden layer ``index`` of ``count`` (itself, unless the kind skips some layers)."""
        return self

    def input_norm(self, features: int) -> nn.Module:
        """The activation norm a ``pre``-placed kind puts on a layer's input (identity otherwise)."""
        return nn.Identity()

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

    Written as the second part of a composition (``weight+batch``), or alone (``batch`` = ``none+batch``).

    When the norm subtracts a per-feature mean computed over the batch, the layer's own bias is
    redundant (its gradient is zero), so it is left out.
    """

    absorbs_bias: ClassVar[bool] = False
    role = "activation"

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


class ComposedNorm(Norm):
    """A weight reparameterization and an activation norm together (``weight+batch_renorm`` ...).

    ``post``: ``act(reparam(layer)(x))``, the layer's bias dropped when the activation norm absorbs it (as
    for ``batch`` alone). ``pre``: ``reparam(layer)(act(x))``. Data-dependent init of a WN part runs on the
    layer's own output, so it standardizes what the activation norm receives (only the scale, when the
    norm absorbs the bias: mean-only BN then removes the mean, as in the WN paper's code).
    """

    def __init__(self, weight: Norm, activation: ActivationNorm, placement: str = "post") -> None:
        self.weight_part, self.activation_part, self.placement = weight, activation, placement
        # ``batch`` placed ``pre`` is still ``batch`` (its label says the placement), not ``none+batch``
        self.name = activation.name if weight.name == "none" else f"{weight.name}+{activation.name}"  # type: ignore[misc]
        self.summary = f"{weight.name} weights with {activation.name} activations ({placement})"  # type: ignore[misc]
        self.uses_batch_statistics = activation.uses_batch_statistics  # type: ignore[misc]
        self.supports_recurrent = (  # type: ignore[misc]
            weight.supports_recurrent and activation.supports_recurrent and placement == "post"
        )

    def option_names(self) -> list[str]:  # type: ignore[override]
        return [*self.weight_part.option_names(), *self.activation_part.option_names(), "placement"]

    def options(self) -> dict[str, Any]:
        parts = {**self.weight_part.options(), **self.activation_part.options(), "placement": self.placement}
        return parts | self._gain_option()

    def _non_default(self) -> dict[str, Any]:
        extra = {**self.weight_part._non_default(), **self.activation_part._non_default()}
        if self.placement != "post":
            extra["placement"] = self.placement
        return extra

    def for_hidden_layer(self, index: int, count: int) -> Norm:
        weight = self.weight_part.for_hidden_layer(index, count)
        if weight is self.weight_part:
            return self
        composed = ComposedNorm(weight, self.activation_part, self.placement)
        composed.init_gain = self.init_gain
        return composed

    def input_norm(self, features: int) -> nn.Module:
        return self.activation_part._norm1d(features) if self.placement == "pre" else nn.Identity()

    def activation(self, default: Callable[[], nn.Module]) -> nn.Module:
        return self.weight_part.activation(default)

    def _around(
        self, build: Callable[[bool], nn.Module], features_in: int, features_out: int, norm
    ) -> nn.Module:
        if self.placement == "pre":
            return nn.Sequential(OrderedDict(norm=norm(features_in), layer=build(True)))
        layer = build(not self.activation_part.absorbs_bias)
        return nn.Sequential(OrderedDict(layer=layer, norm=norm(features_out)))

    def _linear(self, in_features, out_features, bias):
        return self._around(
            lambda keep: self.weight_part._linear(in_features, out_features, bias and keep),
            in_features, out_features, self.activation_part._norm1d,
        )  # fmt: skip

    def _conv2d(self, in_ch, out_ch, kernel_size, stride, padding, bias):
        return self._around(
            lambda keep: self.weight_part._conv2d(in_ch, out_ch, kernel_size, stride, padding, bias and keep),
            in_ch, out_ch, self.activation_part._norm2d,
        )  # fmt: skip

    def _conv_transpose2d(self, in_ch, out_ch, kernel_size, stride, padding, output_padding, bias):
        return self._around(
            lambda keep: self.weight_part._conv_transpose2d(
                in_ch, out_ch, kernel_size, stride, padding, output_padding, bias and keep
            ),
            in_ch, out_ch, self.activation_part._norm2d,
        )  # fmt: skip

    def _lstm(self, lstm: nn.LSTM) -> nn.Module:
        if getattr(self.weight_part, "ddi", False):
            raise NormError(
                f"norm '{self.label}' cannot go into a recurrent layer with ddi=True: inside a normalized LSTM "
                "cell W_h would be data-initialized on the zero first hidden state (the WN paper gives DDI "
                f"for layers without recursion); use '{self.label}' with ddi=False in recurrent networks"
            )
        # The activation part builds the recurrent cell; the weight part builds its W_x and W_h.
        return self.activation_part._recurrent_cell(lstm, lambda i, o: self.weight_part._linear(i, o, False))
