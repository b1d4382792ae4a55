"""Generative models with the projecting norm kinds: projection after every optimizer step (the GAN's manual
optimization and the VAE's automatic one), weight diagnostics as curves, checkpoint round trips."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch

from wnbench.gen import GAN, VAE, GenDataModule, train_gen
from wnbench.norms import projected_modules

NEW_KINDS = ["forced_weight", "forced_weight_mp", "nap", "hyperspherical"]
TINY_GAN = {"latent_dim": 2, "generator_hidden": [16, 16], "discriminator_hidden": [16, 16], "batch_size": 64,
            "eval_samples": 200}  # fmt: skip


def _assert_promised_norms(module: torch.nn.Module) -> int:
    layers = projected_modules(module)
    for m in layers:
        w = m.weight.detach()
        got = w.norm().reshape(1) if m.mode == "initial" else m.row_norms(w).flatten()
        assert torch.allclose(got, torch.full_like(got, m.promised_norm()), rtol=1e-5, atol=1e-5), m
    return len(layers)


@pytest.fixture(scope="module")
def ring8():
    dm = GenDataModule("ring8", batch_size=64)
    dm.setup()
    return dm


def _fit(module: pl.LightningModule, dm, steps: int, root=None) -> pl.Trainer:
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=steps, logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, num_sanity_val_steps=0, limit_val_batches=0,
        default_root_dir=root,
    )  # fmt: skip
    trainer.fit(module, datamodule=dm)
    return trainer


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_a_lightning_gan_projects_both_networks_after_every_step(kind, ring8):
    torch.manual_seed(0)
    gan = GAN(
        (2,), kind, kind, latent_dim=2, generator_hidden=(16, 16), discriminator_hidden=(16, 16), d_steps=2
    )
    g_before = [m.weight.detach().clone() for m in projected_modules(gan.generator)]
    _fit(gan, ring8, steps=3 * 3)  # manual optimization: 3 batches of 2 D steps + 1 G step
    assert gan.batches_seen == 3
    # G: 2 hidden layers; D: its input layer is plain (DCGAN), so 1
    assert _assert_promised_norms(gan.generator) == 2 and _assert_promised_norms(gan.discriminator) == 1
    assert all(
        not torch.equal(m.weight, w) for m, w in zip(projected_modules(gan.generator), g_before, strict=True)
    )


def test_without_the_callback_the_gan_norms_drift(ring8):
    torch.manual_seed(0)
    gan = GAN(
        (2,), "hyperspherical", "hyperspherical", latent_dim=2, lr_generator=3e-2, lr_discriminator=3e-2
    )
    gan.configure_callbacks = lambda: []  # what a module without NormMaintained would do
    _fit(gan, ring8, steps=4)
    with pytest.raises(AssertionError):
        _assert_promised_norms(gan)


def test_the_vae_projects_under_automatic_optimization(ring8):
    torch.manual_seed(0)
    vae = VAE((2,), "nap", "nap", latent_dim=2, likelihood="gaussian", hidden=(16, 16))
    initial = [float(m.target_norm) for m in projected_modules(vae)]
    _fit(vae, ring8, steps=5)
    assert _assert_promised_norms(vae) == 4
    assert [m.weight.detach().norm().item() for m in projected_modules(vae)] == pytest.approx(
        initial, rel=1e-5
    )


@pytest.mark.parametrize(
    ("model", "roles"), [("gan", ("generator", "discriminator")), ("vae", ("encoder", "decoder"))]
)
def test_train_gen_logs_weight_norm_and_effective_lr_curves_per_network(model, roles):
    hp = (
        TINY_GAN
        if model == "gan"
        else {"latent_dim": 2, "hidden": [16, 16], "batch_size": 64, "iw_samples": 4}
    )
    record = train_gen(model, "ring8", "nap", hyperparams=hp, max_steps=6, epochs=2, seed=1)
    rows = [r for r in record["curves"] if f"diag/{roles[0]}_weight_norm" in r]
    assert rows, record["curves"]
    for role in roles:
        norm, eff = rows[-1][f"diag/{role}_weight_norm"], rows[-1][f"diag/{role}_eff_lr"]
        assert math.isfinite(norm) and norm > 0 and 0 < eff < 1
    plain = train_gen(model, "ring8", "none", hyperparams=hp, max_steps=6, epochs=2, seed=1)
    assert any(f"diag/{roles[0]}_weight_norm" in r for r in plain["curves"])  # every norm gets the curves


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_a_checkpoint_round_trip_gives_identical_outputs(kind, ring8, tmp_path):
    torch.manual_seed(0)
    gan = GAN((2,), kind, kind, latent_dim=2, generator_hidden=(16, 16), discriminator_hidden=(16, 16))
    trainer = _fit(gan, ring8, steps=4, root=tmp_path)
    path = tmp_path / "gan.ckpt"
    trainer.save_checkpoint(path)
    loaded = GAN.load_from_checkpoint(path)
    z, x = torch.randn(32, 2), torch.randn(32, 2)
    gan.eval(), loaded.eval()
    with torch.no_grad():
        assert torch.equal(gan.generator(z), loaded.generator(z))
        assert torch.equal(gan.discriminator(x), loaded.discriminator(x))
    for a, b in zip(projected_modules(gan), projected_modules(loaded), strict=True):
        assert a.promised_norm() == b.promised_norm()  # nap's target_norm buffer travels in the checkpoint


def test_the_generators_moving_average_follows_its_formula(ring8):
    torch.manual_seed(0)
    gan = GAN((2,), "weight", "none", latent_dim=2, generator_hidden=(16, 16), ema_decay=0.75)
    gan.data_dependent_init(
        next(iter(ring8.train_dataloader()))[0]
    )  # the average starts here, from G after DDI
    start = [p.detach().clone() for p in gan.generator.parameters()]
    assert all(torch.equal(a, s) for a, s in zip(gan.generator_ema.parameters(), start, strict=True))
    steps = []
    for _ in range(2):
        with torch.no_grad():
            for p in gan.generator.parameters():
                p.add_(torch.randn_like(p))
        steps.append([p.detach().clone() for p in gan.generator.parameters()])
        gan.update_ema()
    for i, average in enumerate(gan.generator_ema.parameters()):  # 0.25 G_2 + 0.75 (0.25 G_1 + 0.75 G_0)
        expected = 0.25 * steps[1][i] + 0.75 * 0.25 * steps[0][i] + 0.75**2 * start[i]
        assert torch.allclose(average, expected, atol=1e-6)
    with pytest.raises(ValueError, match="ema_decay"):
        GAN((2,), ema_decay=1.0)


@pytest.mark.parametrize("kind", ["batch", "hyperspherical"])
def test_the_gan_samples_from_a_moving_average_of_its_generator(kind, ring8):
    torch.manual_seed(0)
    gan = GAN((2,), kind, "none", latent_dim=2, generator_hidden=(16, 16), discriminator_hidden=(16, 16),
              lr_generator=1e-2, ema_decay=0.5)  # fmt: skip
    _fit(gan, ring8, steps=3 * 2)  # 3 batches: a D step and a G step each
    assert gan.sampler is gan.generator_ema
    assert not any(p.requires_grad for p in gan.generator_ema.parameters())
    for average, current in zip(gan.generator_ema.buffers(), gan.generator.buffers(), strict=True):
        assert torch.equal(average, current)  # BN's running statistics are G's
    if kind == "hyperspherical":
        assert _assert_promised_norms(gan.generator_ema) == 2  # the average is put back on the sphere
    assert not all(
        torch.equal(a, g)
        for a, g in zip(gan.generator_ema.parameters(), gan.generator.parameters(), strict=True)
    )
    gan.generator_ema.eval()
    assert torch.equal(
        gan.sample(8, seed=0), gan.generator_ema(gan.noise(8, seed=0))
    )  # samples: the average's
