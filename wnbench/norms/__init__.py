"""The normalization factory: pure torch, knows nothing of RL, GANs or suites.

from wnbench.norms import make_norm
norm = make_norm("weight", ddi=True)
net = norm.mlp(8, [256, 256], 2)
norm.initialize(net, first_batch)
"""

from . import kinds as _kinds  # noqa: F401  (registers the built-in kinds)
from .factory import (
    Norm,
    NormError,
    available_norms,
    initialize,
    make_norm,
    norm_aliases,
    recurrent_norms,
    register_norm,
)
from .layers import LayerNormLSTM, MeanOnlyBatchNorm, PerChannel
from .weightnorm import WNConv2d, WNConvTranspose2d, WNLinear, weight_norm_modules

__all__ = [
    "Norm",
    "NormError",
    "available_norms",
    "initialize",
    "make_norm",
    "norm_aliases",
    "recurrent_norms",
    "register_norm",
    "LayerNormLSTM",
    "MeanOnlyBatchNorm",
    "PerChannel",
    "WNConv2d",
    "WNConvTranspose2d",
    "WNLinear",
    "weight_norm_modules",
]
