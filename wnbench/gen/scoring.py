"""How generative runs are graded (imports nothing heavy, so ``wnbench report`` never loads Lightning).

The headline metric of a (model, dataset) cell: test ELBO for a VAE, the Fréchet distance in the suite's own
classifier's feature space for an image GAN, for a GAN on a Gaussian mixture the coverage weighted by
high-quality samples, ``hq_coverage_pct`` (wnbench.gen.metrics; mode counts saturate at 8 of 8 on the ring), as
the v2 records were scored; for a GAN on any other 2-D density and for a diffusion model on every dataset the
energy distance to held-out points (registry v3, C2), which mixture GANs report beside their headline; for a GAN on
StackedMNIST the KL of its mode histogram to uniform (PacGAN's and VEEGAN's measure; wnbench.gen.digit_metrics).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from wnbench.suite.kinds import Scoring

#: Datasets of 2-D points (Gaussian mixtures, then the toy densities); every other dataset is images. Checked
#: against ``wnbench.gen.data.DATASETS`` by the tests.
MIXTURE_DATASETS = ("ring8", "grid25")
#: StackedMNIST (wnbench.gen.stacked): graded by the KL of its mode histogram to uniform, as PacGAN and VEEGAN.
STACKED_DATASET = "stacked-mnist"
POINT_DATASETS = (*MIXTURE_DATASETS, "swissroll", "checkerboard", "spirals", "moons", "pinwheel", "circles")

#: Graded final metrics and the direction that is better ("max" or "min").
METRICS: dict[str, Literal["max", "min"]] = {
    # VAE (nats per example)
    "elbo_test_nats": "max",
    "nll_iw_test_nats": "min",
    "elbo_gain_over_baseline_nats": "max",  # test ELBO minus the independent per-pixel model's log-likelihood
    "active_units": "max",
    # GAN on images (feature space of the suite's own classifier)
    "fid_classifier": "min",
    "kid_classifier": "min",
    "inception_score_classifier": "max",
    "reconstruction_mse": "min",
    # digits drawn by an image GAN, read by the mnist-5k digit reader (wnbench.gen.digit_metrics; issue 35)
    "recognizable_pct": "max",  # share of samples read with confidence >= 0.9
    "class_share_min": "max",  # smallest class share among the recognizable samples (0.1 when balanced)
    "class_share_max": "min",  # largest
    # StackedMNIST (1,000 modes; 26,000 samples at the end): modes_covered (below) and the KL to uniform
    "kl_modes": "min",
    # GAN on a mixture of Gaussians (wnbench.gen.metrics): the headline is hq_coverage_pct
    "hq_coverage_pct": "max",
    "modes_covered": "max",
    "high_quality_pct": "max",
    "reverse_kl_modes": "min",
    # every model on 2-D points: energy distance to 2,000 held-out points (registry v3, C2)
    "energy_distance": "min",
}
#: Final figures that describe a run but grade nothing.
DIAGNOSTICS = (
    "nll_baseline_independent_nats",
    "kid_classifier_std",
    "modes_covered_any",  # PacGAN's count: modes with >= 1 high-quality sample
    "fid_classifier_floor",  # real training images vs the test set at the fakes' size: a perfect generator's level
    "fid_floor_samples",  # real training images in the floor (min(fakes, training split))
    "fid_fake_samples",
    "fid_real_samples",
    "kid_subset_size",
    "classifier_test_accuracy",
    "reader_test_accuracy",  # the digit reader's accuracy on mnist-5k's test digits
    "recognizable_pct_real",  # recognizable_pct of the real test digits: real data's level
    "channel_recognizable_pct",  # StackedMNIST: share of single channels read with confidence >= 0.9
    "modes_covered_floor",  # StackedMNIST: real test digits stacked at random, 26,000 stacks, same reader
    "kl_modes_floor",
    "mode_samples",
    "energy_distance_floor",  # test vs validation points (2,000 each): a perfect generator's level
    "denoising_loss_test",  # diffusion: the DDPM loss on the test points at fixed t and noise
    "epochs_completed",
    "train_batches",
)


def primary_metric(algo: str, task: str) -> str:
    """The headline metric of a (model, dataset) cell, for verdicts: ELBO, feature FID, HQ-weighted coverage (mixture
    GANs, as in v2) or the energy distance (other 2-D GANs, diffusion)."""
    if algo == "vae":
        return "elbo_test_nats"
    if algo == "diffusion":
        return "energy_distance"
    if task in MIXTURE_DATASETS:
        return "hq_coverage_pct"
    if task == STACKED_DATASET:
        return "kl_modes"
    return "energy_distance" if task in POINT_DATASETS else "fid_classifier"


def arm_label(config: Mapping[str, Any]) -> str:
    """A run's normalization arm in one string, from its record ``config`` (norm label + ``params``).

    ``norm_on: both`` (the default) gives the norm label alone (``weight``); one network gives
    ``spectral@discriminator``; with ``other_norm`` on the other network, ``weight@discriminator,batch@generator``
    (DCGAN's standard arm). Reports use it to tell placement arms of the same norm apart.
    """
    params = config.get("params") or {}
    on = params.get("norm_on", "both")
    norm = str(config.get("norm"))
    if on in (None, "both", "all"):
        return norm
    label = f"{norm}@{on}"
    other = params.get("other_norm")
    if other not in (None, "none"):
        other_name = other.get("name") if isinstance(other, Mapping) else other
        other_options = {k: v for k, v in other.items() if k != "name"} if isinstance(other, Mapping) else {}
        if other_options:
            other_name = f"{other_name}[{','.join(f'{k}={v}' for k, v in sorted(other_options.items()))}]"
        roles = NETWORK_ROLES.get(str(config.get("algo")), ())
        rest = [r for r in roles if r != on]
        label += f",{other_name}@{rest[0] if rest else 'other'}"
    return label


#: The networks of each model, in the order a single norm is applied to them (here, not in wnbench.gen.train, so
#: reports read them without importing Lightning).
NETWORK_ROLES = {
    "vae": ("encoder", "decoder"),
    "gan": ("generator", "discriminator"),
    "diffusion": ("denoiser",),
}
#: Per-network mechanism diagnostics every generative run logs as ``diag/<key>`` curves once per epoch
#: (wnbench.gen.norm_callback): weight-norm growth and effective learning rate of each network's hidden layers.
DIAGNOSTIC_KEYS = tuple(
    f"{role}_{what}"
    for role in dict.fromkeys(r for roles in NETWORK_ROLES.values() for r in roles)
    for what in ("weight_norm", "eff_lr")
)


def _primary_of(config: Mapping[str, Any]) -> str:
    return primary_metric(str(config.get("algo")), str(config.get("task")))


def peer_arm(config: Mapping[str, Any]) -> str:
    """The arm graded against published figures: no norm anywhere (PacGAN's unmodified GAN for the mixtures), but
    batch norm on StackedMNIST, whose published baseline is DCGAN with its batch norm in G and D (PacGAN Table 2)."""
    return "batch" if config.get("task") == STACKED_DATASET else "none"


SCORING = Scoring(
    METRICS, _primary_of, arm=arm_label, arm_params=frozenset({"norm_on", "other_norm"}), peer_arm=peer_arm
)
