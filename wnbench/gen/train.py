"""One generative run as a pure function: ``train_gen(...) -> dict`` (final metrics, per-epoch curves).

Everything a run needs is checked before training starts (model, dataset, files, image size, norms,
hyperparameters). Training is quiet, uses the GPU when there is one, and is deterministic on CPU for a
given seed. A NaN/inf loss or parameter raises FloatingPointError naming the step; the suite engine
marks such runs diverged. Metrics go to ``log_fn(metrics, step)`` per epoch through a tiny Lightning
logger (Lightning's WandbLogger would set WANDB_MODE for the whole process).
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from wnbench.errors import UserError
from wnbench.norms import Norm, make_norm

from . import digit_metrics
from .config import DiffusionHyperparams, GANHyperparams, VAEHyperparams, load_hyperparams
from .datamodule import GenDataModule
from .diffusion import Diffusion
from .digit_metrics import StackedMNISTEvaluator
from .features import ImageGANEvaluator, load_or_train_classifier
from .gan import GAN
from .metrics import PointsEvaluator, independent_baseline_nll
from .nets import conv_plan
from .plots import save_image_grid, save_scatter
from .scoring import NETWORK_ROLES
from .vae import VAE

__all__ = ["train_gen", "ForwardingLogger", "NETWORK_ROLES", "build_run"]

#: Image datasets whose GAN samples the digit reader scores (wnbench.gen.digit_metrics).
READER_DATASETS = ("mnist-5k",)

LogFn = Callable[[dict[str, float], int], None]


class ForwardingLogger(Logger):
    """Collects every logged metric dict and forwards it to ``log_fn(metrics, step)``."""

    def __init__(self, log_fn: LogFn | None = None) -> None:
        super().__init__()
        self.log_fn = log_fn
        self.history: list[dict[str, float]] = []

    @property
    def name(self) -> str:
        return "wnbench"

    @property
    def version(self) -> str:
        return "0"

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        clean = {k: float(v) for k, v in metrics.items()}
        self.history.append({**clean, "step": int(step or 0)})
        if self.log_fn is not None:
            self.log_fn(clean, int(step or 0))


def _merge_by_epoch(history: list[dict[str, float]]) -> list[dict[str, float]]:
    """One row per epoch (Lightning logs train and validation metrics in separate calls)."""
    rows: dict[int, dict[str, float]] = {}
    for entry in history:
        if "epoch" not in entry:
            continue
        rows.setdefault(int(entry["epoch"]), {}).update(entry)
    return [rows[e] | {"epoch": e} for e in sorted(rows)]


@contextmanager
def _quiet(verbose: bool):
    """Silence Lightning's info lines and 'possible user' warnings unless ``verbose``."""
    if verbose:
        yield
        return
    names = ["lightning.pytorch", "lightning.fabric", "lightning"]
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"lightning.*")
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            yield
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


def _resolve_norms(model: str, norm: str | Norm, norms: Mapping[str, str | Norm] | None) -> dict[str, Norm]:
    roles = NETWORK_ROLES[model]
    unknown = sorted(set(norms or {}) - set(roles))
    if unknown:
        raise UserError(
            f"norms: no network {', '.join(map(repr, unknown))} in a {model}; networks: {', '.join(roles)}"
        )
    chosen = {role: (norms or {}).get(role, norm) for role in roles}
    return {role: make_norm(value) for role, value in chosen.items()}


def build_run(
    model: str,
    dataset: str,
    norm: str | Norm = "none",
    *,
    norms: Mapping[str, str | Norm] | None = None,
    hyperparams: Mapping[str, Any] | None = None,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    config_dir: str | Path | None = None,
    evaluation_seed: int = 0,
    download: bool = True,
    with_evaluator: bool = True,
    max_steps: int | None = None,
) -> tuple[
    pl.LightningModule, GenDataModule, VAEHyperparams | GANHyperparams | DiffusionHyperparams, dict[str, Any]
]:
    """Validate a run's inputs and build its module and datamodule (no training). Raises UserError early.

    ``download=False`` never fetches missing IDX files; ``with_evaluator=False`` builds a GAN without its
    metric evaluator, so checking an image run does not train (or load) the feature classifier.
    ``max_steps`` (a cap on training batches) shortens a GAN's linear learning-rate decay to match.
    """
    hp = load_hyperparams(model, dataset, dict(hyperparams or {}), config_dir)
    resolved = _resolve_norms(model, norm, norms)
    binarize = isinstance(hp, VAEHyperparams) and hp.binarize
    dm = GenDataModule(dataset, data_dir, batch_size=hp.batch_size, binarize=binarize, download=download)
    if dm.info.is_image:
        conv_plan(dm.info.shape)  # the dataset's nominal size: fails before reading any file
    dm.setup()
    if dm.info.is_image:
        try:
            conv_plan(dm.info.shape)  # the size the files hold
        except UserError as err:
            height, width = dm.info.shape[1:]
            raise UserError(f"{dataset} images in {data_dir} are {height}x{width}: {err}") from None
    extras: dict[str, Any] = {}
    if model == "vae":
        if not dm.info.is_image and hp.likelihood == "bernoulli":
            raise UserError(
                f"likelihood 'bernoulli' needs binary/[0,1] image data; use 'gaussian' for '{dataset}'"
            )
        module: pl.LightningModule = VAE(
            dm.info.shape, resolved["encoder"], resolved["decoder"], latent_dim=hp.latent_dim,
            likelihood=hp.likelihood, hidden=hp.hidden, base_width=hp.base_width, lr=hp.lr, betas=hp.betas,
            iw_samples=hp.iw_samples, iw_max_examples=hp.iw_max_examples, iw_every_epoch=hp.iw_every_epoch,
        )  # fmt: skip
    elif model == "diffusion":
        if dm.info.is_image:
            raise UserError(f"the diffusion model takes 2-D points, not images ('{dataset}')")
        train_x = dm.tensors("train")[0]
        module = Diffusion(
            dm.info.shape, resolved["denoiser"], width=hp.width, blocks=hp.blocks, time_features=hp.time_features,
            lr=hp.lr, betas=hp.betas, sample_steps=hp.sample_steps,
            lr_decay_batches=_decay_batches(hp, len(dm.train_set), max_steps), data_mean=train_x.mean(0).tolist(),
            data_std=train_x.std(0).tolist(), eval_every=hp.eval_every,
            evaluator=_points_evaluator(dm, hp.eval_samples, evaluation_seed) if with_evaluator else None,
        )  # fmt: skip
    else:
        if not with_evaluator:
            evaluator = None
        elif dataset == "stacked-mnist":
            evaluator, extras["reader_test_accuracy"] = _stacked_evaluator(
                hp.eval_samples, evaluation_seed, cache_dir
            )
        elif dm.info.is_image:
            classifier, accuracy = load_or_train_classifier(
                dataset, dm.tensors("train"), dm.tensors("test"), dm.info.num_classes,
                cache_dir=cache_dir, epochs=hp.classifier_epochs,
            )  # fmt: skip
            extras["feature_classifier_test_accuracy"] = accuracy
            reader = None
            if dataset in READER_DATASETS:  # digits a reader can read: recognizable_pct, class shares
                reader, reader_accuracy = load_or_train_classifier(
                    dataset, dm.tensors("train"), dm.tensors("test"), dm.info.num_classes,
                    cache_dir=cache_dir, purpose="reader",
                )  # fmt: skip
                extras["reader_test_accuracy"] = reader_accuracy
            evaluator = ImageGANEvaluator(
                classifier, dm.tensors("test")[0], num_fake=hp.eval_samples,
                reconstruction_images=hp.reconstruction_images,
                reconstruction_steps=hp.reconstruction_steps, seed=evaluation_seed,
                reference_images=dm.tensors("train")[0], reader=reader,
            )  # fmt: skip
        else:
            evaluator = _points_evaluator(dm, hp.eval_samples, evaluation_seed)
        module = GAN(
            dm.info.shape, resolved["generator"], resolved["discriminator"], latent_dim=hp.latent_dim,
            generator_hidden=hp.generator_hidden, discriminator_hidden=hp.discriminator_hidden,
            base_width=hp.base_width, lr_generator=hp.lr_generator, lr_discriminator=hp.lr_discriminator,
            betas=hp.betas, d_steps=hp.d_steps, evaluator=evaluator, eval_every=hp.eval_every,
            joint_discriminator_batch=hp.joint_discriminator_batch, ema_decay=hp.ema_decay, diff_augment=hp.diff_augment,
            lr_decay_batches=_decay_batches(hp, len(dm.train_set), max_steps),
        )  # fmt: skip
    extras["norms"] = {role: n.label for role, n in resolved.items()}
    return module, dm, hp, extras


def _stacked_evaluator(
    eval_samples: int, seed: int, cache_dir: str | Path | None
) -> tuple[StackedMNISTEvaluator, float]:
    """StackedMNIST's mode counter: the mnist-5k digit reader (trained on mnist-5k's train split) reads each channel."""
    digits = GenDataModule("mnist-5k")
    digits.setup()
    reader, accuracy = load_or_train_classifier(
        "mnist-5k", digits.tensors("train"), digits.tensors("test"), 10, cache_dir=cache_dir, purpose="reader"
    )
    evaluator = StackedMNISTEvaluator(
        reader, digits.tensors("test")[0], num_samples=eval_samples,
        final_samples=digit_metrics.STACKED_FINAL_SAMPLES, seed=seed,
    )  # fmt: skip
    return evaluator, accuracy


def _points_evaluator(dm: GenDataModule, num_samples: int, seed: int) -> PointsEvaluator:
    """Energy distance to the test points (floor: test vs validation) and, on a mixture, its mode scores."""
    modes, std = dm.modes or (None, None)
    return PointsEvaluator(
        dm.tensors("test")[0], dm.tensors("val")[0], modes, std, num_samples=num_samples, seed=seed
    )


def _decay_batches(
    hp: GANHyperparams | DiffusionHyperparams, train_examples: int, max_steps: int | None
) -> int | None:
    """Batches over which a linear schedule decays the GAN's (diffusion's) learning rates to zero (None: constant)."""
    if hp.lr_schedule != "linear":
        return None
    planned = hp.epochs * (train_examples // hp.batch_size)
    return planned if max_steps is None else min(planned, max_steps)


@torch.no_grad()
def _final_vae_metrics(vae: VAE, dm: GenDataModule) -> dict[str, float]:
    vae.eval()
    vae.final_evaluation = True
    vae.on_validation_epoch_start()
    for i, batch in enumerate(dm.test_dataloader()):  # the test split, used only here
        vae.validation_step([t.to(vae.device) for t in batch], i)
    metrics = vae.validation_metrics()
    metrics["baseline_independent_nll_nats"] = independent_baseline_nll(
        dm.tensors("train")[0], dm.tensors("test")[0], vae.likelihood
    )
    if not dm.info.is_image:  # draws from p(x|z) (decoder mean plus its learned noise), not the means alone
        scale = vae.log_scale.exp().cpu()

        def draw(n: int, seed: int) -> torch.Tensor:
            noise = torch.randn(n, *vae.shape, generator=torch.Generator().manual_seed(seed + 1))
            return vae.sample(n, seed=seed).cpu() + scale * noise

        metrics.update(_points_evaluator(dm, 2500, 0).score(draw, final=True))
    return metrics


def _save_figures(module: pl.LightningModule, dm: GenDataModule, run_dir: Path, title: str) -> dict[str, str]:
    samples = module.sample(2500 if not dm.info.is_image else 64, seed=0)
    if dm.info.is_image:
        path = save_image_grid(samples, run_dir / "samples.png", title=title)
    else:
        modes, _ = dm.modes or (None, None)
        path = save_scatter(
            samples, run_dir / "samples.png", modes=modes, real=dm.tensors("test")[0], title=title
        )
    return {"samples": str(path)}


def train_gen(
    model: str,
    dataset: str,
    norm: str | Norm = "none",
    *,
    norms: Mapping[str, str | Norm] | None = None,
    hyperparams: Mapping[str, Any] | None = None,
    seed: int = 0,
    epochs: int | None = None,
    max_steps: int | None = None,
    log_fn: LogFn | None = None,
    run_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    config_dir: str | Path | None = None,
    accelerator: str = "auto",
    verbose: bool = False,
    download: bool = True,
) -> dict[str, Any]:
    """Train one VAE, GAN or diffusion run and return its record.

    ``norm`` applies to both networks; ``norms`` overrides per network (``encoder``/``decoder`` for the
    VAE, ``generator``/``discriminator`` for the GAN, ``denoiser`` for the diffusion model). ``epochs`` overrides the configured count;
    ``max_steps`` caps training batches (smoke tests; a GAN's linear lr decay ends there). ``download=False``
    never fetches missing IDX files. The record holds ``final`` metrics, per-epoch
    ``curves``, the resolved hyperparameters, norms, ``fit_seconds`` (training with per-epoch evaluation),
    ``wall_seconds`` (everything, data and final metrics included) and sample-figure paths (with ``run_dir``).
    """
    if model not in NETWORK_ROLES:
        raise UserError(f"unknown generative model '{model}'; known: {', '.join(NETWORK_ROLES)}")
    started = time.perf_counter()
    overrides = dict(hyperparams or {})
    if epochs is not None:
        overrides["epochs"] = epochs
    pl.seed_everything(seed, workers=True, verbose=False)
    module, dm, hp, extras = build_run(
        model, dataset, norm, norms=norms, hyperparams=overrides, data_dir=data_dir,
        cache_dir=cache_dir, config_dir=config_dir, download=download, max_steps=max_steps,
    )  # fmt: skip
    pl.seed_everything(seed, workers=True, verbose=False)  # classifier training must not shift the run's RNG
    logger = ForwardingLogger(log_fn)
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    with _quiet(verbose), tempfile.TemporaryDirectory(prefix="wnbench-gen-") as scratch:
        trainer = pl.Trainer(
            accelerator=accelerator, devices=1, max_epochs=hp.epochs,
            max_steps=-1 if max_steps is None else max_steps * (hp.d_steps + 1 if model == "gan" else 1),
            logger=logger, enable_progress_bar=verbose, enable_model_summary=verbose, enable_checkpointing=False,
            deterministic="warn" if on_gpu else True, num_sanity_val_steps=0,
            limit_val_batches=1.0 if model == "vae" else 0, log_every_n_steps=1,
            default_root_dir=str(run_dir) if run_dir is not None else scratch,
        )  # fmt: skip
        fit_started = time.perf_counter()
        trainer.fit(module, datamodule=dm)
        fit_seconds = time.perf_counter() - fit_started
        final = _final_vae_metrics(module, dm) if model == "vae" else module.evaluate(final=True)
    record: dict[str, Any] = {
        "model": model,
        "dataset": dataset,
        "norms": extras.pop("norms"),
        "seed": seed,
        "hyperparams": hp.model_dump(mode="json"),
        "final": {**final, **extras},
        "curves": _merge_by_epoch(logger.history),
        "epochs_completed": int(trainer.current_epoch),
        "train_batches": int(module.batches_seen if model == "gan" else trainer.global_step),
        "device": str(module.device),
        "fit_seconds": fit_seconds,
    }
    if run_dir is not None:
        title = f"{model} {dataset} " + " / ".join(f"{r}={label}" for r, label in record["norms"].items())
        record["artifacts"] = _save_figures(module, dm, Path(run_dir), title)
    record["wall_seconds"] = time.perf_counter() - started
    return record
