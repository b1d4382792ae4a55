"""The reference networks the micro-benchmarks time, each built from a norm factory.

Sizes follow DESIGN.md / the C3 issue: an SB3-sized MLP (obs 8 -> 256 -> 256 -> 2, batch 256) and a
DCGAN-sized discriminator and generator for 32x32 images (batch 64). Hidden layers take the norm;
input-facing DCGAN discriminator layer and all output layers stay plain, as in Radford et al. 2016; nonlinearities
come from ``norm.activation`` (EDM2's mp_silu for ``forced_weight_mp``).
Recurrent rows: an LSTM (8 -> 64 hidden, RecurrentPPO's default width is 256; 64 keeps CPU runs short)
over sequences of 16 and 64 steps, batch 32, with a plain head on the last output; its act step is one
time step for one sample, as in a rollout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrizations

from wnbench.norms import Norm, NormError, make_norm
from wnbench.norms.kinds import NoNorm


class TorchWeightNormReference(NoNorm):
    """Reference row, not a registered kind: plain layers wrapped by torch's stock
    ``parametrizations.weight_norm`` — what a user gets without wnbench's fast WN layer."""

    name = "torch_weight_norm"
    summary = "torch.nn.utils.parametrizations.weight_norm on plain layers (reference for the fast WN)"
    supports_recurrent = (
        True  # the LSTM with torch's parametrization: the WN-LSTM before WNLSTM's cached path
    )

    def _lstm(self, lstm):
        for name in [n for n in lstm._flat_weights_names if n.startswith("weight_")]:
            parametrizations.weight_norm(lstm, name=name, dim=0)
        return lstm

    def _linear(self, in_features, out_features, bias):
        return parametrizations.weight_norm(super()._linear(in_features, out_features, bias))

    def _conv2d(self, *args):
        return parametrizations.weight_norm(super()._conv2d(*args))

    def _conv_transpose2d(self, *args):
        return parametrizations.weight_norm(super()._conv_transpose2d(*args), dim=1)


def resolve_norm(name: str) -> Norm:
    """A registered norm, or the stock-torch WN reference row."""
    return TorchWeightNormReference() if name == TorchWeightNormReference.name else make_norm(name)


def norm_problems(names: Sequence[str], resolve: Callable[[str], Norm] = resolve_norm) -> list[str]:
    """One ``--norms: ...`` line per name ``resolve`` cannot build (default: the factory or the reference row)."""
    problems = []
    for name in names:
        try:
            resolve(name)
        except NormError as exc:
            problems.append(f"--norms: {exc}")
    return problems


def mlp(norm: Norm) -> nn.Module:
    return norm.mlp(8, [256, 256], 2)


def dcgan_discriminator(norm: Norm) -> nn.Module:
    lrelu = lambda: norm.activation(lambda: nn.LeakyReLU(0.2))  # noqa: E731
    return nn.Sequential(
        norm.conv2d(3, 64, 4, 2, 1, normalize=False), lrelu(),
        norm.conv2d(64, 128, 4, 2, 1), lrelu(),
        norm.conv2d(128, 256, 4, 2, 1), lrelu(),
        norm.conv2d(256, 1, 4, 1, 0, normalize=False), nn.Flatten(),
    )  # fmt: skip


def dcgan_generator(norm: Norm, z_dim: int = 100) -> nn.Module:
    return nn.Sequential(
        nn.Unflatten(1, (z_dim, 1, 1)),
        norm.conv_transpose2d(z_dim, 256, 4, 1, 0), norm.activation(nn.ReLU),
        norm.conv_transpose2d(256, 128, 4, 2, 1), norm.activation(nn.ReLU),
        norm.conv_transpose2d(128, 64, 4, 2, 1), norm.activation(nn.ReLU),
        norm.conv_transpose2d(64, 3, 4, 2, 1, normalize=False), nn.Tanh(),
    )  # fmt: skip


class RecurrentNet(nn.Module):
    """``norm.lstm`` over a batch-first sequence, then a plain head on the last step's output."""

    def __init__(self, norm: Norm, input_size: int = 8, hidden_size: int = 64, out_features: int = 2) -> None:
        super().__init__()
        self.lstm = norm.lstm(input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


@dataclass(frozen=True)
class BenchModel:
    """A network to time: its builder, the shape of one input sample, the output's shape, the batch size.

    ``act_shape``: one sample's input for the act step when it differs from ``input_shape`` (one time step
    of a recurrent net). ``recurrent``: only norms with a recurrent form are timed on it."""

    name: str
    build: Callable[[Norm], nn.Module]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    batch_size: int
    act_shape: tuple[int, ...] | None = None
    recurrent: bool = False

    @property
    def steps(self) -> int:
        """Time steps per sample (1 for feed-forward nets)."""
        return self.input_shape[0] if self.recurrent else 1

    def inputs(self, batch_size: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        shape = self.act_shape if (batch_size == 1 and self.act_shape) else self.input_shape
        return torch.randn((batch_size, *shape), generator=generator).to(device)

    def targets(self, batch_size: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        return torch.randn((batch_size, *self.output_shape), generator=generator).to(device)


BENCH_MODELS: dict[str, BenchModel] = {
    m.name: m
    for m in (
        BenchModel("mlp", mlp, (8,), (2,), 256),
        BenchModel("dcgan_d", dcgan_discriminator, (3, 32, 32), (1,), 64),
        BenchModel("dcgan_g", dcgan_generator, (100,), (3, 32, 32), 64),
        BenchModel("lstm_t16", RecurrentNet, (16, 8), (2,), 32, act_shape=(1, 8), recurrent=True),
        BenchModel("lstm_t64", RecurrentNet, (64, 8), (2,), 32, act_shape=(1, 8), recurrent=True),
    )
}
#: The models timed unless asked otherwise.
DEFAULT_MODELS = ("mlp", "dcgan_d", "dcgan_g", "lstm_t16", "lstm_t64")
