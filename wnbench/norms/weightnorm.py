"""Fast weight-normalized layers (Salimans & Kingma 2016): ``w = g * v / ||v||`` per output unit.

Why not ``torch.nn.utils.parametrizations.weight_norm``: the stock parametrization recomputes the
weight through Python hooks on every access, which costs ~1.5x a plain MLP train step and ~2.4x a
single-observation forward. Here:

* with grad, the weight is formed by torch's fused weight-norm kernel, or, for convolutions whose
  output is smaller than their kernel, the output is scaled instead (``(g/||v||) * (v*x) + b`` is the
  same function as ``(g v/||v||)*x + b``);
* with no grad needed (rollouts, evaluation), the effective weight is cached and reused until ``g``
  or ``v`` change. Two checks detect a change: the tensors' version counters, which every in-place
  update through the parameter bumps (optimizer steps, ``load_state_dict``, ``copy_`` under no_grad),
  and an exact comparison of ``g`` with the ``g`` the cache was built from, which catches updates made
  through ``.data`` — those bypass the version counter. SB3's ``polyak_update`` of target networks
  is one (``target.data.mul_(1 - tau)``): it moves every parameter, ``g`` included. Code that rewrites
  only ``v.data`` and leaves ``g`` bit-identical must call :meth:`WeightNormMixin.invalidate_cache`.

Data-dependent init (DDI) is armed by :func:`arm_ddi`; the next forward pass sets ``g`` and ``b`` so that
each unit's pre-activation has mean 0 and variance 1 on that batch.

LSTMs get :class:`WNLSTM`, an ``nn.LSTM`` holding ``g``/``v`` per weight with the same cache. The paper gives DDI for
networks without recursion and falls back to standard init for RNNs/LSTMs; :func:`initialize_lstm` applies it
exactly where the layer has no recursion -- the input-to-hidden term ``W_ih x_t + b_ih``, whose input is data
(or the layer below) -- and leaves ``W_hh`` at its standard init.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "WNLinear",
    "WNConv2d",
    "WNConvTranspose2d",
    "WNLSTM",
    "WeightNormMixin",
    "arm_ddi",
    "weight_norm_modules",
    "initialize_lstm",
    "lstm_ddi_scale",
]


class WeightNormMixin(nn.Module):
    """Shared machinery: the ``v``/``g``/``bias`` parameters, the cache and data-dependent init.

    Subclasses set ``_unit_dim`` (the dimension of ``v`` that indexes output units) and implement
    ``_op(x, weight, bias)`` (the underlying linear map) and ``_output_numel(x)``.
    """

    _unit_dim: int = 0
    #: With grad, scale the output instead of the weight when the output has fewer elements. Measured
    #: here (1 CPU thread): for convolutions it pays (DCGAN generator, batch 8: 22 vs 28 ms a step); for
    #: linear layers the extra small ops cost more than they save (256x256 MLP, batch 1-64: 1.4-1.9x slower).
    scale_outputs: bool = False

    def _setup(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        ddi: bool,
        init_scale: float,
        v_std: float | None = None,
    ) -> None:
        self.ddi = ddi
        self.init_scale = init_scale
        if ddi or v_std is not None:
            # The paper's init: v ~ N(0, 0.05) (``v_std`` overrides); with DDI, g and b are then set from
            # data by initialize(). Without DDI, g = ||v|| (below).
            weight = torch.randn_like(weight) * (0.05 if v_std is None else v_std)
        self.v = nn.Parameter(weight.detach().clone())
        # g = ||v|| makes the initial effective weight equal v: WN starts as the plain layer would.
        # g keeps v's rank (e.g. (out, 1) for a linear layer), as torch's weight_norm stores it, so the
        # fused kernel broadcasts it without a reshape in the hot path.
        self.g = nn.Parameter(self._v_norm(self.v.detach()).clone())
        self.register_parameter("bias", nn.Parameter(bias.detach().clone()) if bias is not None else None)
        if ddi and self.bias is not None:
            with torch.no_grad():
                self.bias.zero_()
        self._ddi_armed = False
        self._cache_key: tuple[int, int, int] | None = None
        self._cached_weight: torch.Tensor | None = None
        self._cached_g: torch.Tensor | None = None

    # -- the reparameterization -------------------------------------------------------------
    def _v_norm(self, v: torch.Tensor) -> torch.Tensor:
        """||v|| per output unit, shaped like ``g`` (v's rank, size 1 except along the unit dim)."""
        return torch.norm_except_dim(v, 2, self._unit_dim)

    def _unit_view(self, t: torch.Tensor, ndim: int, unit_axis: int) -> torch.Tensor:
        shape = [1] * ndim
        shape[unit_axis] = -1
        return t.view(shape)

    def effective_weight(self) -> torch.Tensor:
        """The weight ``g * v / ||v||`` this layer applies (differentiable)."""
        # torch's fused kernel (the one the stock parametrization calls), with its fused backward.
        return torch._weight_norm(self.v, self.g, self._unit_dim)

    def _refresh_cache(self, key: tuple[int, int, int]) -> torch.Tensor:
        with torch.no_grad():
            self._cached_weight = self.effective_weight()
            self._cached_g = self.g.detach().clone()
        self._cache_key = key
        return self._cached_weight

    def invalidate_cache(self) -> None:
        """Forget the cached effective weight (needed only after changing ``v.data`` alone, see module doc)."""
        self._cache_key, self._cached_weight, self._cached_g = None, None, None

    def _apply(self, fn, recurse=True):  # .to(), .cuda(), .double(), ...: parameters move, cache goes
        self.invalidate_cache()
        return super()._apply(fn, recurse)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Parameters are read from ``_parameters`` directly: nn.Module.__getattr__ costs ~0.7 us a lookup,
        # which is a measurable share of a single-observation forward.
        params = self._parameters
        v, g = params["v"], params["g"]
        if self._ddi_armed:
            return self._ddi_forward(x)
        if not (torch.is_grad_enabled() and (v.requires_grad or g.requires_grad)):
            key = (v._version, g._version, v.data_ptr())
            fresh = key == self._cache_key and torch.equal(g, self._cached_g)
            weight = self._cached_weight if fresh else self._refresh_cache(key)
            return self._op(x, weight, params["bias"])
        if self.scale_outputs and self._output_numel(x) < v.numel():
            # (g/||v||) * (v·x) + b: elementwise work on the output instead of on the weight.
            y = self._op(x, v, None)
            axis = self._out_axis(y)
            y = y * self._unit_view((g / self._v_norm(v)).reshape(-1), y.dim(), axis)
            bias = params["bias"]
            return y if bias is None else y + self._unit_view(bias, y.dim(), axis)
        return self._op(x, torch._weight_norm(v, g, self._unit_dim), params["bias"])

    # -- data-dependent init ----------------------------------------------------------------
    @torch.no_grad()
    def _ddi_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Set ``g`` (and ``b``) so this batch's pre-activations are standardized, then disarm."""
        t = self._op(x, self.v / self._v_norm(self.v), None)
        axis = self._out_axis(t)
        dims = [d for d in range(t.dim()) if d != axis]
        mean = t.mean(dim=dims)
        scale = self.init_scale / t.var(dim=dims, unbiased=False).add(1e-8).sqrt()
        self.g.copy_(scale.view_as(self.g))
        if self.bias is not None:
            self.bias.copy_(-mean * scale)
            t = t - self._unit_view(mean, t.dim(), axis)
        # Without a bias only the scale is set (a following mean-only BN removes the mean).
        self._ddi_armed = False
        return t * self._unit_view(scale, t.dim(), axis)

    # -- hooks for subclasses ---------------------------------------------------------------
    def _op(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def _out_axis(self, y: torch.Tensor) -> int:
        return 1 if y.dim() > 1 else 0

    def _output_numel(self, x: torch.Tensor) -> int:
        """Number of output elements for input ``x``, without computing the output."""
        raise NotImplementedError


class WNLinear(WeightNormMixin):
    """Weight-normalized ``nn.Linear``: one norm per output unit (row of ``v``)."""

    _unit_dim = 0

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        ddi: bool = False,
        init_scale: float = 1.0,
        v_std: float | None = None,
    ) -> None:
        super().__init__()
        ref = nn.Linear(in_features, out_features, bias=bias)
        self.in_features, self.out_features = in_features, out_features
        self._setup(ref.weight, ref.bias, ddi, init_scale, v_std)

    def _op(self, x, weight, bias):
        return F.linear(x, weight, bias)

    def _out_axis(self, y: torch.Tensor) -> int:
        return y.dim() - 1

    def _output_numel(self, x: torch.Tensor) -> int:
        return x.numel() // self.in_features * self.out_features

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, ddi={self.ddi}"


class WNConv2d(WeightNormMixin):
    """Weight-normalized ``nn.Conv2d``: one norm per output channel."""

    _unit_dim = 0
    scale_outputs = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        ddi: bool = False,
        init_scale: float = 1.0,
        v_std: float | None = None,
    ) -> None:
        super().__init__()
        ref = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = ref.kernel_size, ref.stride, ref.padding
        self._setup(ref.weight, ref.bias, ddi, init_scale, v_std)

    def _op(self, x, weight, bias):
        return F.conv2d(x, weight, bias, self.stride, self.padding)

    def _output_numel(self, x: torch.Tensor) -> int:
        # Output spatial size is about the input's divided by the stride.
        return x.numel() // self.in_channels * self.out_channels // (self.stride[0] * self.stride[1])

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, bias={self.bias is not None}, ddi={self.ddi}"
        )


class WNConvTranspose2d(WeightNormMixin):
    """Weight-normalized ``nn.ConvTranspose2d``, normalized per *output* channel.

    The transposed kernel is stored as ``(in, out, kh, kw)``, so the unit dimension is 1 and the
    norm runs over input channels and the kernel window.
    """

    _unit_dim = 1
    scale_outputs = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        output_padding: int | tuple[int, int] = 0,
        bias: bool = True,
        ddi: bool = False,
        init_scale: float = 1.0,
        v_std: float | None = None,
    ) -> None:
        super().__init__()
        ref = nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding,
            output_padding=output_padding, bias=bias,
        )  # fmt: skip
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = ref.kernel_size, ref.stride
        self.padding, self.output_padding = ref.padding, ref.output_padding
        self._setup(ref.weight, ref.bias, ddi, init_scale, v_std)

    def _op(self, x, weight, bias):
        return F.conv_transpose2d(x, weight, bias, self.stride, self.padding, self.output_padding)

    def _output_numel(self, x: torch.Tensor) -> int:
        # Output spatial size is about the input's times the stride.
        return x.numel() // self.in_channels * self.out_channels * self.stride[0] * self.stride[1]

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, bias={self.bias is not None}, ddi={self.ddi}"
        )


def weight_norm_modules(model: nn.Module) -> list[WeightNormMixin]:
    """All fast-WN layers inside ``model``."""
    return [m for m in model.modules() if isinstance(m, WeightNormMixin)]


def arm_ddi(model: nn.Module) -> list[WeightNormMixin]:
    """Arm data-dependent init on every WN layer built with ``ddi=True``; returns the armed layers."""
    armed = [m for m in weight_norm_modules(model) if m.ddi]
    for m in armed:
        m._ddi_armed = True
    return armed


class WNLSTM(nn.LSTM):
    """``nn.LSTM`` with weight normalization on every weight matrix, one norm per gate unit (row), fast.

    Each ``weight_{ih,hh}_l{k}`` is stored as ``weight_..._v`` and ``weight_..._g`` (``w = g * v / ||v||``) and
    torch's fused LSTM kernel runs on the effective weights. Why not ``parametrizations.weight_norm`` (what this
    replaced): its Python hooks recompute every weight on each call, 1.8-2.4x a plain LSTM's act step. Here,
    as in :class:`WeightNormMixin`: with grad, the weights are formed by the fused weight-norm kernel on each
    call (or once for all calls inside :meth:`cached_weights`, for callers that step a sequence by hand); with
    no grad needed, the effective weights are cached until a ``g`` or ``v`` changes (version counters, plus an
    exact comparison of the ``g`` tensors for updates made through ``.data``). ``lstm.weight_ih_l0`` still
    reads the effective (differentiable) weight.
    """

    def __init__(self, lstm: nn.LSTM) -> None:
        super().__init__(
            lstm.input_size, lstm.hidden_size, lstm.num_layers, bias=lstm.bias, batch_first=lstm.batch_first,
            dropout=lstm.dropout, bidirectional=lstm.bidirectional, proj_size=lstm.proj_size,
        )  # fmt: skip
        if lstm.bidirectional or lstm.proj_size:
            raise ValueError("WNLSTM takes unidirectional LSTMs without projections")
        source = dict(lstm.named_parameters())
        self._wn_slots: list[tuple[int, str, str]] = []  # (index in _flat_weights, v name, g name)
        for index, name in enumerate(self._flat_weights_names):
            value = source[name].detach().clone()
            del self._parameters[name]
            if name.startswith("weight_"):
                self.register_parameter(f"{name}_v", nn.Parameter(value))
                self.register_parameter(f"{name}_g", nn.Parameter(torch.norm_except_dim(value, 2, 0).clone()))
                self._wn_slots.append((index, f"{name}_v", f"{name}_g"))
            else:
                self.register_parameter(name, nn.Parameter(value))
        self._wn_names = {self._flat_weights_names[i]: (v, g) for i, v, g in self._wn_slots}
        self._grad_cache: list[torch.Tensor] | None = None
        self._caching = False
        self.invalidate_cache()
        self._init_flat_weights()

    # -- the effective weights ----------------------------------------------------------------
    def wn_parameters(self, name: str) -> tuple[nn.Parameter, nn.Parameter]:
        """``(g, v)`` of the weight ``name`` (e.g. ``"weight_ih_l0"``)."""
        v, g = self._wn_names[name]
        return self._parameters[g], self._parameters[v]

    def __getattr__(self, name: str):
        slots = self.__dict__.get("_wn_names")
        if slots is not None and name in slots:
            g, v = self.wn_parameters(name)
            return torch._weight_norm(v, g, 0)
        return super().__getattr__(name)

    def _flat(self) -> list[torch.Tensor]:
        params = self._parameters
        return [
            torch._weight_norm(params[self._wn_names[n][0]], params[self._wn_names[n][1]], 0)
            if n in self._wn_names else params[n]
            for n in self._flat_weights_names
        ]  # fmt: skip

    def invalidate_cache(self) -> None:
        """Forget the no-grad cache (needed only after changing a ``v.data`` alone)."""
        self._cache_key: tuple | None = None
        self._cached_flat: list[torch.Tensor] | None = None
        self._cached_g: list[torch.Tensor] = []

    @contextmanager
    def cached_weights(self):
        """Form the effective weights once for every call inside, with grad (as ``parametrize.cached()``): for
        callers that run a sequence one step at a time. Do not step the optimizer inside."""
        self._caching, self._grad_cache = True, None
        try:
            yield self
        finally:
            self._caching, self._grad_cache = False, None

    def _current_flat(self) -> list[torch.Tensor]:
        params = self._parameters
        if torch.is_grad_enabled() and any(p.requires_grad for p in params.values()):
            if not self._caching:
                return self._flat()
            if self._grad_cache is None:
                self._grad_cache = self._flat()
            return self._grad_cache
        # No grad: the cached weights while no g or v changed (written flat: this runs on every act step).
        d = self.__dict__
        vs = [params[v] for _, v, _ in self._wn_slots]
        gs = [params[g] for _, _, g in self._wn_slots]
        key = (vs[0].data_ptr(), *[p._version for p in vs], *[p._version for p in gs])
        if key == d["_cache_key"]:
            fresh = True
            for g, cached in zip(gs, d["_cached_g"]):  # noqa: B905  (same length by construction)
                if not torch.equal(g, cached):
                    fresh = False
                    break
            if fresh:
                return d["_cached_flat"]
        with torch.no_grad():
            self._cached_flat = self._flat()
            self._cached_g = [g.detach().clone() for g in gs]
        self._cache_key = key
        return self._cached_flat

    # -- nn.LSTM's flat-weight bookkeeping, redirected to the effective weights ----------------
    def _init_flat_weights(self) -> None:
        if "_wn_names" not in self.__dict__:  # during nn.LSTM.__init__, before the split into g and v
            return super()._init_flat_weights()
        with torch.no_grad():
            self._flat_weights = self._flat()
        self._flat_weight_refs = [weakref.ref(w) for w in self._flat_weights]

    def _update_flat_weights(self) -> None:
        pass  # forward() sets _flat_weights itself

    def _apply(self, fn, recurse=True):
        if "_wn_names" in self.__dict__:
            self.invalidate_cache()
        return super()._apply(fn, recurse)

    def forward(self, input, hx=None):  # noqa: A002  (nn.LSTM's signature)
        # Straight into __dict__: nn.Module.__setattr__ (and RNNBase's) cost a measurable share of one act step.
        self.__dict__["_flat_weights"] = self._current_flat()
        return super().forward(input, hx)


#: Attribute a WN-DDI norm sets on the ``nn.LSTM`` it parametrizes (value: the DDI ``init_scale``).
_LSTM_DDI_ATTR = "wn_ddi_init_scale"


def lstm_ddi_scale(lstm: nn.Module) -> float | None:
    """The DDI ``init_scale`` of an LSTM weight-normalized with ``ddi=True``; None for any other module."""
    return getattr(lstm, _LSTM_DDI_ATTR, None)


def _run_lstm_layer(lstm: nn.LSTM, layer: int, x: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    """Outputs of layer ``layer`` of ``lstm`` over sequences ``x`` (T, N, D), state zeroed where ``starts``."""
    names = [f"{kind}_l{layer}" for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    params = [getattr(lstm, name) for name in names]  # effective weights, through any parametrization
    steps, batch = x.shape[:2]
    h = x.new_zeros(batch, lstm.hidden_size)
    c = x.new_zeros(batch, lstm.hidden_size)
    out = []
    for t in range(steps):
        keep = (1.0 - starts[t]).view(-1, 1)
        h, c = torch._VF.lstm_cell(x[t], (h * keep, c * keep), *params)
        out.append(h)
    return torch.stack(out)


@torch.no_grad()
def initialize_lstm(lstm: nn.LSTM, x: torch.Tensor, episode_starts: torch.Tensor | None = None) -> int:
    """DDI for a weight-normalized ``nn.LSTM``: standardize each layer's input-to-hidden term on real sequences.

    ``x``: input sequences ``(T, N, input_size)`` (time first); ``episode_starts`` ``(T, N)``: 1 where a new
    sequence begins (the state is zeroed there, as sb3-contrib does). For each layer, bottom up, ``g`` of
    ``W_ih`` and ``b_ih`` are set so that ``W_ih x_t + b_ih`` has mean 0 and standard deviation ``init_scale``
    per gate unit over all ``T * N`` steps; ``W_hh`` and ``b_hh`` keep their standard init (the recurrent
    term's input depends on the layer's own weights, which is why the paper gives no DDI for recursions).
    Returns the number of weights initialized (0 when the LSTM was not built with ``ddi=True``).
    """
    scale = lstm_ddi_scale(lstm)
    if scale is None:
        return 0
    if lstm.batch_first or lstm.bidirectional or getattr(lstm, "proj_size", 0) or not lstm.bias:
        raise ValueError("LSTM DDI needs a unidirectional, time-first LSTM with biases and no projection")
    starts = x.new_zeros(x.shape[:2]) if episode_starts is None else episode_starts.to(x.dtype)
    for layer in range(lstm.num_layers):
        name = f"weight_ih_l{layer}"
        g, v = lstm.wn_parameters(name)
        t = x.reshape(-1, x.shape[-1]) @ (v / torch.norm_except_dim(v, 2, 0)).T
        mean, std = t.mean(0), t.var(0, unbiased=False).add(1e-8).sqrt()
        g.copy_((scale / std).view_as(g))
        getattr(lstm, f"bias_ih_l{layer}").copy_(-mean * scale / std)
        if layer + 1 < lstm.num_layers:
            x = _run_lstm_layer(lstm, layer, x, starts)
    return lstm.num_layers
