"""Generative benchmark layer: Lightning VAE and GAN built from a norm factory, data modules, metrics.

    from wnbench.gen import train_gen
    record = train_gen("gan", "ring8", "weight_ddi", seed=0)
    record["final"]["modes_covered"]

Modules are usable on their own (``VAE(shape, "weight", "batch")``, ``GAN(...)``) with any
LightningDataModule yielding ``(x, y)`` batches.
"""

from .config import GANHyperparams, VAEHyperparams, load_hyperparams
from .data import DATASETS, GenDataModule, dataset_info, load_arrays, mixture_modes
from .gan import GAN
from .idx import read_idx, write_idx
from .metrics import active_units, independent_baseline_nll, mixture_metrics
from .train import NETWORK_ROLES, ForwardingLogger, build_run, train_gen
from .vae import VAE

__all__ = [
    "DATASETS",
    "GAN",
    "GANHyperparams",
    "GenDataModule",
    "ForwardingLogger",
    "NETWORK_ROLES",
    "VAE",
    "VAEHyperparams",
    "active_units",
    "build_run",
    "dataset_info",
    "independent_baseline_nll",
    "load_arrays",
    "load_hyperparams",
    "mixture_metrics",
    "mixture_modes",
    "read_idx",
    "train_gen",
    "write_idx",
]
