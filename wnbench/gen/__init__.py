"""Generative benchmark layer: Lightning VAE, GAN and diffusion model built from a norm factory, data modules, metrics.

    from wnbench.gen import train_gen
    record = train_gen("gan", "ring8", "weight_ddi", seed=0)
    record["final"]["hq_coverage_pct"]

Modules are usable on their own (``VAE(shape, "weight", "batch")``, ``GAN(...)``) with any
LightningDataModule yielding ``(x, y)`` batches.

Names are imported lazily: ``import wnbench.gen`` (or ``wnbench.gen.scoring``) does not pull in Lightning until one
is used.
"""

from __future__ import annotations

from wnbench.lazy import lazy_exports

_EXPORTS = {
    "DiffusionHyperparams": "config",
    "GANHyperparams": "config",
    "VAEHyperparams": "config",
    "load_hyperparams": "config",
    "DATASETS": "data",
    "GenDataModule": "datamodule",
    "dataset_info": "data",
    "load_splits": "data",
    "prepared_splits": "data",
    "mixture_modes": "data",
    "Diffusion": "diffusion",
    "GAN": "gan",
    "read_idx": "idx",
    "write_idx": "idx",
    "active_units": "metrics",
    "energy_distance": "metrics",
    "independent_baseline_nll": "metrics",
    "mixture_metrics": "metrics",
    "NETWORK_ROLES": "train",
    "ForwardingLogger": "train",
    "build_run": "train",
    "train_gen": "train",
    "VAE": "vae",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
