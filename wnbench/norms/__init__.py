"""The normalization factory: pure torch, knows nothing of RL, GANs or suites.

from wnbench.norms import make_norm
norm = make_norm("weight", ddi=True)
net = norm.mlp(8, [256, 256], 2)
# compositions: make_norm("weight+batch_renorm", ddi=True, placement="pre")  (CrossQ + WN)
norm.initialize(net, first_batch)
# kinds that project weights (forced_weight, nap, hyperspherical): attach_projection(optimizer, net)
"""

from . import kinds as _kinds  # noqa: F401  (registers the built-in kinds)
from .factory import (
    COMPOSITION_GRAMMAR,
    PLACEMENTS,
    ComposedNorm,
    Norm,
    NormError,
    available_norms,
    initialize,
    make_norm,
    norm_aliases,
    norm_state_buffers,
    recurrent_norms,
    register_norm,
)
from .layers import BatchNormLSTM, LayerNormLSTM, MeanOnlyBatchNorm, NormLSTM, PerChannel, SequenceBatchNorm
from .projected import (
    MPSiLU,
    ProjectedConv2d,
    ProjectedConvTranspose2d,
    ProjectedLinear,
    SphereScaler,
    mp_silu,
)
from .projection import attach_projection, attached_projections, project_, projected_modules
from .spectral import TrackedSpectralNorm, spectral_norm_modules
from .weightnorm import WNLSTM, WNConv2d, WNConvTranspose2d, WNLinear, weight_norm_modules

__all__ = [
    "COMPOSITION_GRAMMAR",
    "PLACEMENTS",
    "ComposedNorm",
    "Norm",
    "NormError",
    "available_norms",
    "initialize",
    "make_norm",
    "norm_aliases",
    "norm_state_buffers",
    "recurrent_norms",
    "register_norm",
    "BatchNormLSTM",
    "LayerNormLSTM",
    "MeanOnlyBatchNorm",
    "NormLSTM",
    "PerChannel",
    "SequenceBatchNorm",
    "MPSiLU",
    "ProjectedConv2d",
    "ProjectedConvTranspose2d",
    "ProjectedLinear",
    "SphereScaler",
    "mp_silu",
    "attach_projection",
    "attached_projections",
    "project_",
    "projected_modules",
    "TrackedSpectralNorm",
    "spectral_norm_modules",
    "WNConv2d",
    "WNConvTranspose2d",
    "WNLinear",
    "WNLSTM",
    "weight_norm_modules",
]
