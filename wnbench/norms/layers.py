"""Normalization layers the factory needs that torch does not ship."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = [
    "MeanOnlyBatchNorm",
    "PerChannel",
    "SequenceBatchNorm",
    "NormLSTM",
    "LayerNormLSTM",
    "BatchNormLSTM",
]


class MeanOnlyBatchNorm(nn.Module):
    """Mean-only batch normalization (Salimans & Kingma 2016, sec. 2.2), with a learned bias.

    Subtracts the minibatch mean per feature/channel in training and a running mean in evaluation;
    does not divide by the standard deviation (weight norm already fixes the scale).
    """

    def __init__(self, num_features: int, momentum: float = 0.1) -> None:
        super().__init__()
        self.num_features = num_features
        self.momentum = momentum
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel_axis = 1 if x.dim() > 2 else x.dim() - 1
        dims = [d for d in range(x.dim()) if d != channel_axis]
        shape = [1] * x.dim()
        shape[channel_axis] = -1
        if self.training:
            mean = x.mean(dim=dims)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
        else:
            mean = self.running_mean
        return x - mean.view(shape) + self.bias.view(shape)

    def extra_repr(self) -> str:
        return f"{self.num_features}, momentum={self.momentum}"


class PerChannel(nn.Module):
    """Applies a feature-wise ``(N, C)`` layer to every position of an ``(N, C, H, W)`` map.

    Lets a 1-d normalizer such as sb3-contrib's ``BatchRenorm1d`` (CrossQ's) serve convolutions,
    with statistics per channel over batch and space, as ``BatchNorm2d`` computes them.
    """

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return self.inner(x)
        n, c, h, w = x.shape
        flat = x.permute(0, 2, 3, 1).reshape(-1, c)
        return self.inner(flat).reshape(n, h, w, c).permute(0, 3, 1, 2)


class SequenceBatchNorm(nn.Module):
    """Batch normalization with separate statistics per time step (Cooijmans et al. 2017, sec. 3).

    ``forward(x, time)`` takes a ``(T, B, F)`` sequence whose first step is time ``time``, or one ``(B, F)``
    step at time ``time``. In train mode each step is normalized with its own minibatch statistics; the
    running (population) statistics are kept per time step up to ``t_max`` and reused beyond it, as in the
    paper. The affine ``weight``/``bias`` are shared over time; ``weight`` starts at ``gamma_init`` (0.1, the
    paper's advice against saturating the gates).
    """

    def __init__(
        self, num_features: int, t_max: int, momentum: float = 0.1, eps: float = 1e-5, gamma_init: float = 0.1
    ) -> None:
        super().__init__()
        self.num_features, self.t_max, self.momentum, self.eps = num_features, t_max, momentum, eps
        self.weight = nn.Parameter(torch.full((num_features,), float(gamma_init)))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(t_max, num_features))
        self.register_buffer("running_var", torch.ones(t_max, num_features))

    def share_over_time(self) -> None:
        """Keep one set of statistics for every time step (``t_max = 1``), for callers that cannot say
        which time step a call is (sb3-contrib's RecurrentPPO feeds its LSTM one step per call)."""
        self.t_max = 1
        self.running_mean = self.running_mean[:1].clone()
        self.running_var = self.running_var[:1].clone()

    def forward(self, x: torch.Tensor, time: int = 0) -> torch.Tensor:
        step = x.dim() == 2
        seq = x.unsqueeze(0) if step else x
        steps, batch = seq.shape[0], seq.shape[1]
        index = (torch.arange(steps, device=x.device) + time).clamp(max=self.t_max - 1)
        if self.training:
            if batch < 2:
                raise ValueError(
                    f"SequenceBatchNorm: expected more than 1 value per feature when training, got batch {batch}"
                )
            mean = seq.mean(dim=1)
            var = seq.var(dim=1, unbiased=False)
            with torch.no_grad():
                unbiased = var * (batch / (batch - 1))
                if time + steps <= self.t_max:  # one slot per step: one vectorized update
                    self.running_mean[time : time + steps].lerp_(mean, self.momentum)
                    self.running_var[time : time + steps].lerp_(unbiased, self.momentum)
                else:
                    for t in range(steps):
                        slot = int(index[t])
                        self.running_mean[slot].lerp_(mean[t], self.momentum)
                        self.running_var[slot].lerp_(unbiased[t], self.momentum)
        else:
            mean, var = self.running_mean[index], self.running_var[index]
        out = (seq - mean.unsqueeze(1)) * torch.rsqrt(var.unsqueeze(1) + self.eps) * self.weight + self.bias
        return out.squeeze(0) if step else out

    def extra_repr(self) -> str:
        return f"{self.num_features}, t_max={self.t_max}, momentum={self.momentum}, eps={self.eps}"


def _plain_linear(in_features: int, out_features: int) -> nn.Module:
    return nn.Linear(in_features, out_features, bias=False)


class NormLSTM(nn.Module):
    """An LSTM with a norm on the input-to-hidden and hidden-to-hidden gate terms and on the cell.

    ``gates = N_ih(W_x x_t) + N_hh(W_h h_{t-1})``, ``c_t = sigmoid(f) c_{t-1} + sigmoid(i) tanh(g)``,
    ``h_t = sigmoid(o) tanh(N_c(c_t))`` (Ba et al. 2016 with layer norm; Cooijmans et al. 2017 with batch norm,
    whose statistics are per time step). The norms' affine shifts are the gate biases. ``linear(in, out)``
    builds ``W_x`` and ``W_h`` (plain by default; a WN or SN layer in compositions such as ``weight+layer``).

    Takes and returns what ``nn.LSTM`` does (``(input, (h0, c0)) -> (output, (h_n, c_n))``, sequence first
    unless ``batch_first``), so it drops in where sb3-contrib's RecurrentPPO holds an ``nn.LSTM``; the extra
    ``time`` argument says which time step the input's first step is (for per-time-step statistics).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        batch_first: bool = False,
        *,
        gate_norm: Callable[[int], nn.Module],
        cell_norm: Callable[[int], nn.Module],
        linear: Callable[[int, int], nn.Module] = _plain_linear,
    ) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.batch_first = num_layers, batch_first
        self.bidirectional = False
        self.cells = nn.ModuleList()
        for layer in range(num_layers):
            cell = nn.Module()
            cell.ih = linear(input_size if layer == 0 else hidden_size, 4 * hidden_size)
            cell.hh = linear(hidden_size, 4 * hidden_size)
            cell.norm_ih = gate_norm(4 * hidden_size)
            cell.norm_hh = gate_norm(4 * hidden_size)
            cell.norm_c = cell_norm(hidden_size)
            self.cells.append(cell)

    @staticmethod
    def _norm(module: nn.Module, x: torch.Tensor, time: int) -> torch.Tensor:
        return module(x, time) if isinstance(module, SequenceBatchNorm) else module(x)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None, time: int = 0
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(1)
        if self.batch_first and not unbatched:
            x = x.transpose(0, 1)
        seq_len, batch = x.shape[0], x.shape[1]
        if state is None:
            h0 = c0 = x.new_zeros(self.num_layers, batch, self.hidden_size)
        else:
            h0, c0 = state
            if unbatched:
                h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
        h_n, c_n = [], []
        layer_input = x
        for layer, cell in enumerate(self.cells):
            h, c = h0[layer], c0[layer]
            gates_x = self._norm(cell.norm_ih, cell.ih(layer_input), time)  # all time steps at once
            outputs = []
            for t in range(seq_len):
                gates = gates_x[t] + self._norm(cell.norm_hh, cell.hh(h), time + t)
                i, f, g, o = gates.chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(self._norm(cell.norm_c, c, time + t))
                outputs.append(h)
            layer_input = torch.stack(outputs)
            h_n.append(h)
            c_n.append(c)
        out, h_n, c_n = layer_input, torch.stack(h_n), torch.stack(c_n)
        if self.batch_first and not unbatched:
            out = out.transpose(0, 1)
        if unbatched:
            out, h_n, c_n = out.squeeze(1), h_n.squeeze(1), c_n.squeeze(1)
        return out, (h_n, c_n)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, batch_first={self.batch_first}"


class LayerNormLSTM(NormLSTM):
    """Layer-normalized LSTM (Ba et al. 2016): LN on both gate terms and on the cell."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        batch_first: bool = False,
        *,
        eps: float = 1e-5,
        linear: Callable[[int, int], nn.Module] = _plain_linear,
    ) -> None:
        def ln(features: int) -> nn.Module:
            return nn.LayerNorm(features, eps=eps)

        super().__init__(
            input_size, hidden_size, num_layers, batch_first, gate_norm=ln, cell_norm=ln, linear=linear
        )


class BatchNormLSTM(NormLSTM):
    """Recurrent batch normalization (Cooijmans et al. 2017): BN with per-time-step statistics on both gate
    terms and on the cell, statistics kept up to ``t_max`` steps and reused beyond."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        batch_first: bool = False,
        *,
        t_max: int = 100,
        momentum: float = 0.1,
        eps: float = 1e-5,
        linear: Callable[[int, int], nn.Module] = _plain_linear,
    ) -> None:
        def bn(features: int) -> nn.Module:
            return SequenceBatchNorm(features, t_max, momentum=momentum, eps=eps)

        super().__init__(
            input_size, hidden_size, num_layers, batch_first, gate_norm=bn, cell_norm=bn, linear=linear
        )
