"""Hyperparameters per (model, dataset): pydantic models, defaults from ``configs/gen/{model}.yaml``.

The YAML files are keyed by dataset (like rl-baselines3-zoo's per-env files); a run's overrides are
validated against the same model (``extra="forbid"``), so a misspelt key is a UserError naming it.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wnbench.errors import UserError

from .data import dataset_info

__all__ = [
    "VAEHyperparams",
    "GANHyperparams",
    "DiffusionHyperparams",
    "MODELS",
    "default_config_dir",
    "load_hyperparams",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VAEHyperparams(_Strict):
    """VAE training and evaluation settings."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=2)
    lr: float = Field(1e-3, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    latent_dim: int = Field(16, ge=1)
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    binarize: bool = False
    hidden: list[int] = Field(default_factory=lambda: [256, 256], min_length=1)
    base_width: int = Field(32, ge=1)
    iw_samples: int = Field(100, ge=0)
    iw_max_examples: int | None = Field(None, ge=1)
    iw_every_epoch: bool = False


class GANHyperparams(_Strict):
    """GAN training and evaluation settings."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=2)
    latent_dim: int = Field(64, ge=1)
    generator_hidden: list[int] = Field(default_factory=lambda: [128, 128], min_length=1)
    discriminator_hidden: list[int] = Field(default_factory=lambda: [128, 128], min_length=1)
    base_width: int = Field(32, ge=1)
    lr_generator: float = Field(2e-4, gt=0)
    lr_discriminator: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    d_steps: int = Field(1, ge=1)
    lr_schedule: Literal["constant", "linear"] = "constant"
    joint_discriminator_batch: bool = False
    #: Decay of the moving average of G's weights that samples and scores come from (e.g. 0.999); None: G itself.
    ema_decay: float | None = Field(None, gt=0, lt=1)
    #: DiffAugment policies for images (wnbench.gen.diffaugment: translation, cutout); empty: none.
    diff_augment: list[Literal["translation", "cutout"]] = Field(default_factory=list)
    #: Generated samples per evaluation: mixture scores (PacGAN's 2,500) and image FID/KID (>= 2,000 advised).
    eval_samples: int = Field(2500, ge=10)
    #: Epochs between per-epoch evaluations (the curves); the final evaluation always runs.
    eval_every: int = Field(1, ge=1)
    reconstruction_images: int = Field(64, ge=1)
    reconstruction_steps: int = Field(200, ge=0)
    classifier_epochs: int | None = Field(None, ge=1)


class DiffusionHyperparams(_Strict):
    """Diffusion model (wnbench.gen.diffusion) training and sampling settings."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(256, ge=2)
    lr: float = Field(1e-3, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    width: int = Field(128, ge=1)
    blocks: int = Field(2, ge=1)
    time_features: int = Field(32, ge=2, multiple_of=2)
    lr_schedule: Literal["constant", "linear"] = "linear"
    #: Ancestral sampler steps; any count >= 1 (continuous-time schedule: the step count is the sampler's choice).
    sample_steps: int = Field(100, ge=1)
    #: Epochs between per-epoch evaluations (the curves); the final evaluation always runs.
    eval_every: int = Field(10, ge=1)
    #: Mixture scores' sample count (PacGAN's 2,500); the energy distance always uses 2,000.
    eval_samples: int = Field(2500, ge=10)


MODELS: dict[str, type[_Strict]] = {
    "vae": VAEHyperparams,
    "gan": GANHyperparams,
    "diffusion": DiffusionHyperparams,
}


def default_config_dir() -> Path:
    """``configs/gen`` at the repository root (next to the ``wnbench`` package)."""
    return Path(__file__).resolve().parents[2] / "configs" / "gen"


def _problems(exc: ValidationError, where: str) -> list[str]:
    return [f"{where}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]


def _config_table(path: Path) -> Any:
    """The parsed config file, read once per (path, modification time, size); a copy, so callers may edit it."""
    stat = path.stat()
    return copy.deepcopy(_parse_config(str(path), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=32)
def _parse_config(path: str, mtime_ns: int, size: int) -> Any:
    try:
        return yaml.safe_load(Path(path).read_bytes().decode("utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8"
        ) from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({exc})") from None


def load_hyperparams(
    model: str, dataset: str, overrides: dict | None = None, config_dir: str | Path | None = None
) -> VAEHyperparams | GANHyperparams | DiffusionHyperparams:
    """Defaults, then ``{config_dir}/{model}.yaml[dataset]``, then ``overrides``; all validated."""
    if model not in MODELS:
        raise UserError(f"unknown generative model '{model}'; known: {', '.join(MODELS)}")
    dataset_info(dataset)
    schema = MODELS[model]
    path = Path(config_dir or default_config_dir()) / f"{model}.yaml"
    values: dict = {}
    if path.is_file():
        table = _config_table(path)
        if not isinstance(table, dict) or not isinstance(table.get(dataset, {}), dict):
            raise UserError(f"{path}: expected a mapping of dataset name -> hyperparameters")
        values.update(table.get(dataset) or {})
    try:
        schema(**values)
    except ValidationError as exc:
        raise UserError(f"{path}: bad hyperparameters for '{dataset}'", _problems(exc, dataset)) from None
    values.update(overrides or {})
    try:
        return schema(**values)
    except ValidationError as exc:
        raise UserError(
            f"bad hyperparameters for {model} on {dataset}", _problems(exc, "hyperparams")
        ) from None
