"""VAE and GAN modules: every norm kind trains, DDI runs on the first batch, runs are deterministic,
bad input fails before training, divergence is reported with its step."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch

from wnbench.errors import UserError
from wnbench.gen import GAN, VAE, GenDataModule, load_hyperparams, train_gen
from wnbench.norms import available_norms, make_norm, weight_norm_modules

# none, batch, batch_renorm, layer, group, weight, weight_meanonly, spectral, and the alias weight_ddi
NORMS = available_norms()
TINY_VAE = {"latent_dim": 4, "base_width": 8, "hidden": [16], "iw_samples": 4}
TINY_GAN = {"latent_dim": 8, "base_width": 8, "generator_hidden": [16], "discriminator_hidden": [16],
            "eval_samples": 200, "reconstruction_images": 4, "reconstruction_steps": 2}  # fmt: skip


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def _changed(before, module):
    return sum(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


@pytest.fixture(scope="module")
def digits():
    dm = GenDataModule("digits", batch_size=32, binarize=True)
    dm.setup()
    return dm


def _fit(module, dm, steps=3):
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=steps, logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, num_sanity_val_steps=0, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(module, datamodule=dm)
    return trainer


@pytest.mark.parametrize("norm", NORMS)
def test_vae_trains_with_every_norm(norm, digits):
    torch.manual_seed(0)
    vae = VAE((1, 8, 8), norm, norm, latent_dim=4, base_width=8, iw_samples=4)
    before = _params(vae)
    _fit(vae, digits)
    assert vae._ddi_done
    assert _changed(before, vae) == len(before)  # every parameter got updates
    x = digits.tensors("test")[0][:16]
    vae.eval()
    elbo, _ = vae.elbo(x)
    nll = -vae.iw_log_likelihood(x, 8)
    assert torch.isfinite(elbo).all() and torch.isfinite(nll).all()


@pytest.mark.parametrize("norm", NORMS)
def test_gan_trains_with_every_norm(norm, digits):
    torch.manual_seed(0)
    gan = GAN((1, 8, 8), norm, norm, latent_dim=8, base_width=8)
    before_g, before_d = _params(gan.generator), _params(gan.discriminator)
    _fit(gan, digits, steps=6)  # manual optimization: Lightning counts both optimizers' steps
    assert gan.batches_seen == 3
    assert _changed(before_g, gan.generator) == len(before_g)
    assert _changed(before_d, gan.discriminator) == len(before_d)
    samples = gan.sample(10, seed=1)
    assert samples.shape == (10, 1, 8, 8) and float(samples.min()) >= 0 and float(samples.max()) <= 1
    assert torch.equal(samples, gan.sample(10, seed=1))


@pytest.mark.parametrize("model", ["vae", "gan"])
@pytest.mark.parametrize("norm", ["batch", "weight_ddi", "spectral"])
def test_mlp_models_on_points_train_through_train_gen(model, norm):
    hp = {k: v for k, v in (TINY_VAE if model == "vae" else TINY_GAN).items() if k not in ("base_width",)}
    record = train_gen(model, "ring8", norm, hyperparams={**hp, "batch_size": 64}, max_steps=4, epochs=1)
    assert record["train_batches"] == 4
    assert all(math.isfinite(v) for v in record["final"].values())
    key = "test_elbo_nats" if model == "vae" else "modes_covered"
    assert key in record["final"]


def test_ddi_standardizes_first_layer_on_the_first_batch(digits):
    vae = VAE((1, 8, 8), "weight_ddi", "weight_ddi", latent_dim=4, base_width=8)
    x = digits.tensors("train")[0][:64]
    assert vae.data_dependent_init(x) == len(weight_norm_modules(vae))
    first = vae.encoder.features[0]
    with torch.no_grad():
        out = first(x)
    assert out.mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert (out.var(dim=(0, 2, 3), unbiased=False) - 1).abs().max() < 1e-3


def _affine_layers(net):
    """(name, layer, normalized) for every conv/linear layer in forward (registration) order."""
    from wnbench.norms.weightnorm import WeightNormMixin

    layers = []
    for name, m in net.named_modules():
        if isinstance(m, WeightNormMixin):
            layers.append((name, m, True))
        elif isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d | torch.nn.Linear):
            # Activation norms wrap as Sequential(layer=..., norm=...); spectral norm parametrizes the weight.
            layers.append((name, m, name.endswith(".layer") or hasattr(m, "parametrizations")))
    return layers


@pytest.mark.parametrize("norm", ["batch", "weight"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 16, 16), (2,)])
def test_gan_keeps_d_input_and_g_output_layers_plain_as_dcgan(norm, shape):
    gan = GAN(shape, norm, norm, latent_dim=8, base_width=8)
    d_layers = [normalized for _, _, normalized in _affine_layers(gan.discriminator)]
    g_layers = [normalized for _, _, normalized in _affine_layers(gan.generator)]
    assert d_layers == [False] + [True] * (len(d_layers) - 2) + [False]
    assert g_layers == [True] * (len(g_layers) - 1) + [False]


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 16, 16), (2,)])
def test_spectral_norm_covers_every_discriminator_layer_as_sn_gan(shape):
    """Miyato et al. (2018): SN on every D layer, input and head included; here with a plain generator."""
    gan = GAN(shape, "none", "spectral", latent_dim=8, base_width=8)
    d_layers = _affine_layers(gan.discriminator)
    assert len(d_layers) >= 3 and all(normalized for _, _, normalized in d_layers)
    assert not any(normalized for _, _, normalized in _affine_layers(gan.generator))
    # Same architecture as every other norm's D: only the parametrization differs.
    plain = GAN(shape, "none", "none", latent_dim=8, base_width=8)
    assert [m.weight.shape for _, m, _ in _affine_layers(plain.discriminator)] == [
        m.weight.shape for _, m, _ in d_layers
    ]
    # Every layer's weight has spectral norm ~1 after a few power iterations (train-mode forwards).
    x = torch.rand(16, *shape)
    for _ in range(30):
        gan.discriminator(x)
    for name, layer, _ in d_layers:
        weight = layer.weight.detach().flatten(1)  # torch's SN bounds a conv kernel reshaped to (out, -1)
        assert torch.linalg.matrix_norm(weight, ord=2) == pytest.approx(1.0, rel=0.05), name


def test_composed_spectral_norm_keeps_batch_norm_off_the_discriminator_ends():
    gan = GAN((2,), "none", "spectral+batch", latent_dim=8)
    layers = _affine_layers(gan.discriminator)
    assert all(normalized for _, _, normalized in layers)
    batch_norms = [m for m in gan.discriminator.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(batch_norms) == len(layers) - 2  # hidden layers only: not on the input layer nor on the logit


def test_per_network_norms_and_labels():
    record = train_gen(
        "gan", "ring8", "none", norms={"discriminator": "spectral"},
        hyperparams={**{k: v for k, v in TINY_GAN.items() if k != "base_width"}, "batch_size": 64}, max_steps=2, epochs=1,
    )  # fmt: skip
    assert record["norms"] == {"generator": "none", "discriminator": "spectral"}
    with pytest.raises(UserError, match="no network 'critic'"):
        train_gen("gan", "ring8", norms={"critic": "batch"})


def test_train_gen_is_deterministic_and_logs_per_epoch(tmp_path):
    hp = {**TINY_VAE, "batch_size": 64}
    logged = []
    first = train_gen(
        "vae",
        "digits",
        "batch",
        hyperparams=hp,
        seed=3,
        epochs=2,
        log_fn=lambda m, s: logged.append((s, m)),
        run_dir=tmp_path,
    )
    second = train_gen("vae", "digits", "batch", hyperparams=hp, seed=3, epochs=2)
    other = train_gen("vae", "digits", "batch", hyperparams=hp, seed=4, epochs=2)
    assert first["final"] == second["final"]
    assert first["final"]["test_elbo_nats"] != other["final"]["test_elbo_nats"]
    assert [row["epoch"] for row in first["curves"]] == [0, 1]
    # Per-epoch curves are on the validation split; only the final evaluation reads the test split.
    assert all("val_elbo_nats" in row and "train_neg_elbo_nats" in row for row in first["curves"])
    assert not any("test_elbo_nats" in row for row in first["curves"])
    assert {s for s, m in logged if "val_elbo_nats" in m} == {row["step"] for row in first["curves"]}
    png = tmp_path / "samples.png"
    assert first["artifacts"]["samples"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_image_gan_run_reports_feature_metrics(tmp_path):
    record = train_gen("gan", "digits", "weight", hyperparams={**TINY_GAN, "classifier_epochs": 2}, epochs=1,
                       max_steps=3, cache_dir=tmp_path / "cache", run_dir=tmp_path / "run")  # fmt: skip
    final = record["final"]
    for key in (
        "fid_feature",
        "kid_feature",
        "inception_score_classifier",
        "reconstruction_mse",
        "feature_classifier_test_accuracy",
    ):
        assert math.isfinite(final[key]), key
    assert (tmp_path / "run" / "samples.png").is_file()


def test_divergence_raises_with_the_step():
    with pytest.raises(FloatingPointError, match=r"diverged at step \d+"):
        train_gen("vae", "digits", "none", hyperparams={**TINY_VAE, "lr": 1e12}, epochs=3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "flow", "dataset": "digits"}, "unknown generative model 'flow'"),
        ({"model": "gan", "dataset": "cifar100"}, "unknown dataset 'cifar100'"),
        ({"model": "vae", "dataset": "digits", "hyperparams": {"latent": 3}}, "hyperparams.latent"),
        ({"model": "vae", "dataset": "digits", "hyperparams": {"lr": -1}}, "bad hyperparameters"),
        ({"model": "vae", "dataset": "ring8", "hyperparams": {"likelihood": "bernoulli"}}, "gaussian"),
        ({"model": "gan", "dataset": "mnist", "data_dir": "{tmp}"}, "train-images-idx3-ubyte(.gz) "),
    ],
)
def test_bad_input_fails_before_training(kwargs, message, tmp_path):
    kwargs = {k: (str(tmp_path) if v == "{tmp}" else v) for k, v in kwargs.items()}
    with pytest.raises(UserError) as info:
        train_gen(kwargs.pop("model"), kwargs.pop("dataset"), **kwargs)
    assert message in info.value.render()


def test_unknown_norm_is_rejected():
    with pytest.raises(ValueError, match="unknown norm 'wieght'"):
        train_gen("vae", "digits", "wieght")


def test_image_size_the_networks_cannot_take():
    with pytest.raises(UserError, match="30x30 cannot be taken"):
        GAN((1, 30, 30))
    with pytest.raises(UserError, match="not square"):
        VAE((3, 32, 16), make_norm("none"))


def test_config_files_validate_for_every_model_and_dataset():
    from wnbench.gen import DATASETS

    for model in ("vae", "gan"):
        for dataset in DATASETS:
            hp = load_hyperparams(model, dataset)
            assert hp.epochs >= 1


def test_gan_runs_repeat_exactly_for_a_seed():
    hp = {**{k: v for k, v in TINY_GAN.items() if k != "base_width"}, "batch_size": 64}
    first, second, other = (
        train_gen("gan", "ring8", "batch", hyperparams=hp, seed=s, max_steps=5, epochs=1) for s in (1, 1, 2)
    )
    assert first["final"] == second["final"] and first["curves"] == second["curves"]
    # After 5 updates no sample is high quality for either seed, so compare what the seed does change: the losses.
    assert first["curves"][0]["loss_discriminator"] != other["curves"][0]["loss_discriminator"]


def test_gan_evaluates_every_eval_every_epochs_and_always_at_the_end():
    hp = {**{k: v for k, v in TINY_GAN.items() if k != "base_width"}, "batch_size": 256, "eval_every": 2}
    record = train_gen("gan", "ring8", "none", hyperparams=hp, epochs=3)  # 100 batches an epoch
    evaluated = [row["epoch"] for row in record["curves"] if "hq_coverage_pct" in row]
    assert evaluated == [1]  # epochs 0, 1, 2: only the second is an evaluation epoch
    assert "hq_coverage_pct" in record["final"]
