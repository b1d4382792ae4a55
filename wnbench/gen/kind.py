"""The ``gen`` run kind: one VAE or GAN run of a suite (see ``suites/gen*.yaml`` and ``wnbench.suite.kinds``).

How a suite names a generative run:

``task``    the dataset: ``digits``, ``ring8``, ``grid25``, the 2-D densities ``swissroll``, ``checkerboard``,
            ``spirals``, ``moons``, ``pinwheel``, ``circles``, ``mnist``, ``fashion-mnist``, ``cifar10``.
``algo``    the model: ``vae``, ``gan`` or ``diffusion`` (2-D points only; one network, ``denoiser``).
``norm``    the normalization of the networks ``params.norm_on`` names (output layers unnormalized, except
            spectral norm on a GAN discriminator, which covers every layer as SN-GAN uses it).
``params.norm_on``  placement arm: ``both`` (default; encoder+decoder, generator+discriminator: Xiang & Li's
            WN-DCGAN), or one network -- ``generator`` / ``discriminator`` for a GAN, ``encoder`` / ``decoder`` for
            a VAE. The other network gets ``params.other_norm`` (default ``none``). So:
            SN-GAN's arm (Miyato et al. 2018): ``norm: spectral, norm_on: discriminator`` (plain generator);
            DCGAN's standard arm: ``norm: weight`` (or ``spectral``), ``norm_on: discriminator``,
            ``other_norm: batch`` (a BN generator). A network the model does not have is an error naming the
            field. Both fields are in the run's params, so records and reports carry the arm.
``params``  :class:`Params`: ``epochs``, ``lr`` (a GAN's two learning rates alike), ``batch_size`` -- flat so a
            suite can ``sweep`` them -- and ``hyperparams`` for any other field of
            :class:`~wnbench.gen.config.VAEHyperparams` / :class:`~wnbench.gen.config.GANHyperparams`. Values
            not given come from ``configs/gen/{algo}.yaml`` for the dataset.
``budget.steps``  optional cap on training batches (generator updates for a GAN); a GAN's linear
            learning-rate decay ends at the cap. Without it a run trains ``epochs`` epochs.

Final metrics (:data:`METRICS` gives each graded one's direction, :data:`DIAGNOSTICS` the rest):
VAE ``elbo_test_nats``, ``nll_iw_test_nats``, ``active_units``, ``elbo_gain_over_baseline_nats``; image GAN
``fid_classifier``, ``kid_classifier``, ``inception_score_classifier``, ``reconstruction_mse``, on mnist-5k also
``recognizable_pct``, ``class_share_min``, ``class_share_max`` (the digit reader, wnbench.gen.digit_metrics); GAN on
StackedMNIST ``kl_modes`` (the headline) and ``modes_covered`` of 1,000, from 26,000 samples; GAN on a Gaussian
mixture ``hq_coverage_pct`` (the headline), ``modes_covered``, ``modes_covered_any``, ``high_quality_pct``,
``reverse_kl_modes``; every model on 2-D points ``energy_distance`` (to 2,000 held-out points; the headline on the
densities, and a diffusion model's everywhere) with ``energy_distance_floor`` beside it; diffusion
``denoising_loss_test``. Per-epoch curves use the same names, with
``step`` = training batches done (GAN: generator updates).

Files in the run folder: ``samples.png`` (image grid or 2-D scatter) and ``gen.json`` (resolved
hyperparameters, per-network norms, device, epochs and batches trained, fit time, the process's CPU time). The image-GAN feature
classifier is trained once per dataset into a cache shared by the suite's runs: ``$WNBENCH_CACHE`` when set,
else ``OUT/cache`` beside ``OUT/runs`` (a file lock makes parallel workers train it once).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from wnbench.errors import UserError
from wnbench.norms import NormError
from wnbench.suite.kinds import Diverged, RunContext, RunSpec

from .config import MODELS, load_hyperparams
from .data import DATASETS, dataset_info, prepared_splits
from .nets import conv_plan
from .scoring import DIAGNOSTICS, METRICS, primary_metric
from .train import NETWORK_ROLES, build_run, train_gen

__all__ = ["Params", "METRICS", "DIAGNOSTICS", "primary_metric", "identity", "validate", "run"]

#: train_gen / Lightning metric names -> the suite's names (anything not listed keeps its name).
_RENAME = {
    "test_elbo_nats": "elbo_test_nats",
    "test_iw_nll_nats": "nll_iw_test_nats",
    "val_elbo_nats": "elbo_val_nats",
    "val_iw_nll_nats": "nll_iw_val_nats",
    "baseline_independent_nll_nats": "nll_baseline_independent_nats",
    "train_neg_elbo_nats": "neg_elbo_train_nats",
    "fid_feature": "fid_classifier",
    "kid_feature": "kid_classifier",
    "kid_feature_std": "kid_classifier_std",
    "fid_feature_floor": "fid_classifier_floor",
    "feature_classifier_test_accuracy": "classifier_test_accuracy",
    "reverse_kl": "reverse_kl_modes",
}
_FLAT_HYPERPARAMS = ("epochs", "lr", "batch_size")
_FILE_DATASETS = ("mnist", "fashion-mnist", "cifar10")


class Params(BaseModel):
    """Per-run parameters of a generative run (everything else comes from ``configs/gen/{algo}.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    epochs: int | None = Field(None, ge=1, description="training epochs (default: the config file's)")
    lr: float | None = Field(None, gt=0, description="learning rate; for a GAN, both networks'")
    batch_size: int | None = Field(None, ge=2, description="training batch size")
    hyperparams: dict[str, Any] = Field(
        default_factory=dict, description="other VAE/GAN hyperparameters (configs/gen/{algo}.yaml fields)"
    )
    norm_on: Literal["both", "encoder", "decoder", "generator", "discriminator"] = Field(
        "both", description="which network takes the norm (both, or one); the other gets other_norm"
    )
    other_norm: str | dict[str, Any] | None = Field(
        None,
        description="norm of the network norm_on leaves out (a norm name or {name: ..., options}); default none",
    )
    data_dir: str | None = Field(
        None, description="folder with mnist/fashion-mnist IDX files or cifar-10-batches-py ($WNBENCH_DATA)"
    )
    download: bool = Field(False, description="fetch missing MNIST/Fashion-MNIST files into data_dir")


def _hyperparam_overrides(params: Params) -> dict[str, Any]:
    """``params`` as train_gen hyperparameter overrides: ``lr`` sets both of a GAN's learning rates."""
    overrides = dict(params.hyperparams)
    if params.epochs is not None:
        overrides["epochs"] = params.epochs
    if params.batch_size is not None:
        overrides["batch_size"] = params.batch_size
    return overrides


def _with_lr(algo: str, overrides: dict[str, Any], lr: float | None) -> dict[str, Any]:
    if lr is None:
        return overrides
    keys = ("lr_generator", "lr_discriminator") if algo == "gan" else ("lr",)
    return {**overrides, **dict.fromkeys(keys, lr)}


def _data_dir(params: Params) -> str | None:
    return params.data_dir or os.environ.get("WNBENCH_DATA") or None


def _other_norm(params: Params):
    """``params.other_norm`` as a Norm (``none`` when unset)."""
    from wnbench.norms import make_norm

    spec = params.other_norm
    if spec is None:
        return make_norm("none")
    if isinstance(spec, dict):
        options = {k: v for k, v in spec.items() if k != "name"}
        if "name" not in spec:
            raise NormError("a norm mapping needs 'name'")
        return make_norm(spec["name"], **options)
    return make_norm(spec)


def _network_norms(spec: RunSpec) -> dict[str, Any]:
    """The norm each network is built with: the spec's norm where ``norm_on`` says, ``other_norm`` elsewhere."""
    params: Params = spec.params  # type: ignore[assignment]
    on = params.norm_on
    return {
        role: spec.make_norm() if on in ("both", role) else _other_norm(params)
        for role in NETWORK_ROLES[spec.algo]
    }


# -- validation -----------------------------------------------------------------------------------------------------


def _hyperparam_problems(err: UserError, params: Params, algo: str) -> list[str]:
    """load_hyperparams' ``hyperparams.<key>: msg`` lines as ``params.<field>: msg`` for the suite."""
    out = []
    known = ", ".join(MODELS[algo].model_fields)
    for line in err.problems or [str(err)]:
        head, _, message = line.partition(": ")
        key = head.removeprefix("hyperparams.").split(".")[0]
        if "Extra inputs are not permitted" in message:
            message = f"unknown {algo} hyperparameter; known: {known}"
        if key in _FLAT_HYPERPARAMS and getattr(params, key) is not None:
            out.append(f"params.{key}: {message}")
        elif key in ("lr_generator", "lr_discriminator") and params.lr is not None:
            out.append(f"params.lr: {message}")
        elif head.startswith("hyperparams."):
            out.append(f"params.hyperparams.{key}: {message}")
        else:  # the config file itself is bad
            out.append(f"params: {line}")
    return out


def _check_data(task: str, data_dir: str | None, download: bool, batch_size: int) -> tuple[int, ...]:
    """Read the dataset once (files found, well formed, enough examples) and return its example shape."""
    info, splits = prepared_splits(task, data_dir, download=download)
    if info.is_image:
        try:
            conv_plan(info.shape)
        except UserError as err:
            where = f" in {data_dir}" if task in _FILE_DATASETS else ""
            raise UserError(f"{task} images{where} are {info.shape[1]}x{info.shape[2]}: {err}") from None
    if len(splits["train"][0]) < batch_size:
        raise UserError(
            f"batch_size {batch_size} exceeds the {len(splits['train'][0])} training examples of '{task}'"
        )
    return info.shape


def validate(spec: RunSpec) -> list[str]:
    """Check a run before any training: model, dataset, hyperparameters, data files, image size, networks.

    Messages start with the field they are about (``task``, ``algo``, ``norm``, ``params.<field>``).
    Image GANs are built without their metric evaluator, so no feature classifier is trained here.
    """
    params: Params = spec.params  # type: ignore[assignment]
    problems = []
    if spec.algo not in NETWORK_ROLES:
        problems.append(f"algo: unknown generative model '{spec.algo}'; known: {', '.join(NETWORK_ROLES)}")
    if spec.task not in DATASETS:
        try:
            dataset_info(spec.task)
        except UserError as err:
            problems.append(f"task: {err}")
    if problems:
        return problems
    if spec.algo == "diffusion" and dataset_info(spec.task).is_image:
        points = ", ".join(n for n, info in DATASETS.items() if not info.is_image)
        return [
            f"task: the diffusion model takes 2-D points, not images ('{spec.task}'); 2-D datasets: {points}"
        ]
    roles = NETWORK_ROLES[spec.algo]
    if params.norm_on != "both" and params.norm_on not in roles:
        return [
            f"params.norm_on: a {spec.algo} has no network '{params.norm_on}'; use both, {', '.join(roles)}"
        ]
    if params.other_norm is not None:
        if params.norm_on == "both":
            return [
                f"params.other_norm: norm_on is 'both', so no network is left for other_norm; set norm_on to "
                f"{' or '.join(roles)}"
            ]
        try:
            _other_norm(params)
        except (NormError, TypeError) as err:
            return [f"params.other_norm: {err}"]

    overrides = _with_lr(spec.algo, _hyperparam_overrides(params), params.lr)
    try:
        hp = load_hyperparams(spec.algo, spec.task, overrides)
    except UserError as err:
        return _hyperparam_problems(err, params, spec.algo)

    data_dir = _data_dir(params)
    data_field = "params.data_dir" if params.data_dir and spec.task in _FILE_DATASETS else "task"
    try:
        _check_data(spec.task, data_dir, params.download, hp.batch_size)
    except UserError as err:
        batch_problem = str(err).startswith("batch_size")
        field = "params.batch_size" if batch_problem and params.batch_size else data_field
        return [f"{field}: {err}"]
    if spec.algo == "vae" and not dataset_info(spec.task).is_image and hp.likelihood == "bernoulli":
        return [
            f"params.hyperparams.likelihood: 'bernoulli' needs [0, 1] images; use 'gaussian' for {spec.task}"
        ]
    try:
        build_run(
            spec.algo, spec.task, norms=_network_norms(spec), hyperparams=overrides, data_dir=data_dir,
            download=params.download, with_evaluator=False, max_steps=spec.budget.steps,
        )  # fmt: skip
    except (UserError, NormError, ValueError, TypeError) as err:
        return [f"norm: cannot build the {spec.algo} on {spec.task} with this norm: {err}"]
    return []


def identity(spec: RunSpec) -> dict[str, Any]:
    """What this run reads beyond its spec: the hyperparameters after ``configs/gen/{algo}.yaml`` and ``params``.

    Part of the run id (wnbench.suite.kinds), so editing a value in the config file makes resume rerun the
    runs it affects. Raises UserError for a bad config (``validate`` reports it first when checks run).
    """
    params: Params = spec.params  # type: ignore[assignment]
    overrides = _with_lr(spec.algo, _hyperparam_overrides(params), params.lr)
    try:
        hyperparams = load_hyperparams(spec.algo, spec.task, overrides)
    except UserError as err:
        raise UserError(str(err), _hyperparam_problems(err, params, spec.algo)) from None
    dumped = hyperparams.model_dump(mode="json")
    for key, off in LATER_HYPERPARAMS.items():
        if key in dumped and dumped[key] == off:
            del dumped[key]
    return {"hyperparams": dumped}


#: Hyperparameters added after records were published, with the value that leaves training as it was: a run at that
#: value leaves them out of its identity, so the runs that predate them keep their run ids.
LATER_HYPERPARAMS: dict[str, Any] = {"ema_decay": None, "diff_augment": []}


# -- running --------------------------------------------------------------------------------------------------------

_DIVERGED = re.compile(r"diverged at step (\d+): (.*)", re.S)


def _cache_dir(ctx: RunContext) -> Path:
    """Shared by a suite's runs: ``$WNBENCH_CACHE``, else ``OUT/cache`` (the run folder is ``OUT/runs/<id>``)."""
    if os.environ.get("WNBENCH_CACHE"):
        return Path(os.environ["WNBENCH_CACHE"])
    return Path(ctx.run_dir).resolve().parent.parent / "cache"


def _final_metrics(record: dict[str, Any]) -> dict[str, float]:
    """The record's final figures under the suite's names, plain floats, plus derived ones."""
    metrics = {_RENAME.get(k, k): float(v) for k, v in record["final"].items()}
    if "elbo_test_nats" in metrics and "nll_baseline_independent_nats" in metrics:
        metrics["elbo_gain_over_baseline_nats"] = (
            metrics["elbo_test_nats"] + metrics["nll_baseline_independent_nats"]
        )
    metrics["epochs_completed"] = float(record["epochs_completed"])
    metrics["train_batches"] = float(record["train_batches"])
    return metrics


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    tmp.replace(path)


def run(spec: RunSpec, ctx: RunContext) -> dict[str, float]:
    """Train one VAE/GAN run with train_gen (GPU when present); curves through ``ctx.log``; final metrics back."""
    params: Params = spec.params  # type: ignore[assignment]
    overrides = _with_lr(spec.algo, _hyperparam_overrides(params), params.lr)
    epoch_logged_at: set[int] = set()

    def log_epoch(metrics: dict[str, float], step: int) -> None:
        # Lightning's step is the index of the epoch's last batch: +1 gives training batches done.
        batches = step + 1
        renamed = {_RENAME.get(k, k): v for k, v in metrics.items()}
        if batches in epoch_logged_at:  # train and validation metrics arrive separately, each with `epoch`
            renamed.pop("epoch", None)
        epoch_logged_at.add(batches)
        if renamed:
            ctx.log(renamed, step=batches)

    try:
        record = train_gen(
            spec.algo, spec.task, norms=_network_norms(spec), hyperparams=overrides, seed=spec.seed,
            max_steps=spec.budget.steps, log_fn=log_epoch, run_dir=ctx.run_dir, data_dir=_data_dir(params),
            cache_dir=_cache_dir(ctx), accelerator="auto", download=params.download,
        )  # fmt: skip
    except FloatingPointError as err:
        match = _DIVERGED.search(str(err))
        step = int(match.group(1)) if match else ctx.last_step
        raise Diverged(step, match.group(2) if match else str(err)) from err

    details = {k: v for k, v in record.items() if k not in ("final", "curves")}
    # This run process's CPU time: what sizes a suite when other work shares the cores and wall times mislead.
    details["process_cpu_s"] = time.process_time()
    _write_json(Path(ctx.run_dir) / "gen.json", details)
    log_image = getattr(ctx.tracker, "log_image", None)
    for name, path in (record.get("artifacts") or {}).items():
        if callable(log_image):
            log_image(name, path, step=ctx.last_step)
    return _final_metrics(record)
