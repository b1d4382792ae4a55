"""Features extractors and MLP extractors whose hidden layers come from the normalization factory.

SB3 keeps its building blocks in ``common/torch_layers.py``; these are ours: :class:`NormMlpExtractor` (SB3's
``MlpExtractor`` built by a norm) and :class:`MinAtarCNN` (a trunk that takes the policy's norm), plus
:func:`resolve_norm`, which turns what a user writes (a name, a mapping, a Norm) into a norm.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from wnbench.norms import Norm, make_norm

__all__ = ["NormSpec", "resolve_norm", "NormMlpExtractor", "MinAtarCNN"]

NormSpec = str | Mapping[str, Any] | Norm


def resolve_norm(spec: NormSpec | None) -> Norm:
    """A :class:`Norm` from a name, a mapping ``{"name": ..., **options}`` or a Norm (None -> ``"none"``)."""
    if spec is None:
        return make_norm("none")
    if isinstance(spec, Norm):
        return spec
    if isinstance(spec, Mapping):
        options = dict(spec)
        name = options.pop("name", None) or options.pop("kind", None)
        if name is None:
            raise ValueError(f"norm mapping needs a 'name' key, got {dict(spec)!r}")
        return make_norm(name, **options)
    return make_norm(str(spec))


class NormMlpExtractor(nn.Module):
    """SB3's ``MlpExtractor`` (same attributes and forward methods) with factory-built hidden layers."""

    def __init__(
        self,
        feature_dim: int,
        net_arch: list[int] | dict[str, list[int]],
        activation_fn: type[nn.Module],
        actor_norm: Norm,
        critic_norm: Norm,
    ) -> None:
        super().__init__()
        if isinstance(net_arch, dict):
            pi_dims, vf_dims = list(net_arch.get("pi", [])), list(net_arch.get("vf", []))
        else:
            pi_dims = vf_dims = list(net_arch)
        self.policy_net = actor_norm.mlp(feature_dim, pi_dims, activation=activation_fn)
        self.value_net = critic_norm.mlp(feature_dim, vf_dims, activation=activation_fn)
        self.latent_dim_pi = pi_dims[-1] if pi_dims else feature_dim
        self.latent_dim_vf = vf_dims[-1] if vf_dims else feature_dim

    def forward(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: th.Tensor) -> th.Tensor:
        return self.policy_net(features)

    def forward_critic(self, features: th.Tensor) -> th.Tensor:
        return self.value_net(features)


class MinAtarCNN(BaseFeaturesExtractor):
    """The MinAtar network's trunk (Young & Tian 2019): one 3x3 conv with 16 channels, then a dense layer.

    Takes channels-last ``(10, 10, C)`` grids as MinAtar's gymnasium envs emit them (boolean; SB3 casts to
    float), builds both layers with the given norm.
    """

    accepts_norm: ClassVar[bool] = True

    def __init__(
        self,
        observation_space: spaces.Box,
        features_dim: int = 128,
        norm: NormSpec = "none",
        conv_channels: int = 16,
    ) -> None:
        super().__init__(observation_space, features_dim)
        height, width, channels = observation_space.shape
        norm = resolve_norm(norm)
        self.cnn = nn.Sequential(norm.conv2d(channels, conv_channels, 3, 1), nn.ReLU(), nn.Flatten())
        self.linear = nn.Sequential(
            norm.linear(conv_channels * (height - 2) * (width - 2), features_dim), nn.ReLU()
        )

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.linear(self.cnn(observations.float().permute(0, 3, 1, 2)))
