"""Normalization layers the factory needs that torch does not ship."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MeanOnlyBatchNorm", "PerChannel", "LayerNormLSTM"]


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


class LayerNormLSTM(nn.Module):
    """An LSTM with layer normalization on the gate pre-activations and the cell (Ba et al. 2016).

    Takes and returns what ``nn.LSTM`` does — ``(input, (h0, c0)) -> (output, (h_n, c_n))``, sequence
    first unless ``batch_first`` — so it drops in where sb3-contrib's RecurrentPPO holds an ``nn.LSTM``.
    Unidirectional only.
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, batch_first: bool = False
    ) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.batch_first = num_layers, batch_first
        self.bidirectional = False
        self.cells = nn.ModuleList()
        for layer in range(num_layers):
            cell = nn.Module()
            cell.ih = nn.Linear(input_size if layer == 0 else hidden_size, 4 * hidden_size, bias=False)
            cell.hh = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
            cell.ln_ih = nn.LayerNorm(4 * hidden_size)
            cell.ln_hh = nn.LayerNorm(4 * hidden_size)
            cell.ln_c = nn.LayerNorm(hidden_size)
            self.cells.append(cell)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
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
            gates_x = cell.ln_ih(cell.ih(layer_input))  # all time steps at once
            outputs = []
            for t in range(seq_len):
                gates = gates_x[t] + cell.ln_hh(cell.hh(h))
                i, f, g, o = gates.chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(cell.ln_c(c))
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
