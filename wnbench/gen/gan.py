"""A GAN (Goodfellow et al. 2014) as a LightningModule, with the norm chosen per network.

DCGAN-style conv generator/discriminator for images (the generator ends in tanh; images are mapped
to [-1, 1] for the discriminator), MLPs for 2-D points. Non-saturating loss, Lightning 2 manual
optimization with one Adam per network: ``d_steps`` discriminator updates, then one generator update,
per batch, optionally with both learning rates decayed linearly to zero.

As in DCGAN, the discriminator's input layer and head and the generator's output layer are unnormalized --
except spectral norm on D, which covers every D layer, input and head included, as SN-GAN (Miyato et al.
2018) and Kurach et al. (2019) apply it (a Lipschitz bound on D holds only if every layer is bounded). And
by default real and fake samples go through D in separate batches, so batch-statistics norms see each
on its own (the noise the WN paper points at). ``joint_discriminator_batch=True`` feeds them as one
batch instead (the careful way, cf. CrossQ's joint forward). An optional ``evaluator(gan, final)``
returns metrics logged at the end of every ``eval_every``-th training epoch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from wnbench.norms import Norm, make_norm, project_

from .diffaugment import diff_augment
from .metrics import check_finite, check_finite_parameters
from .nets import ConvDown, ConvUp, mlp
from .norm_callback import NormMaintained

__all__ = ["GAN", "spectral_part"]

Evaluator = Callable[["GAN", bool], dict[str, float]]


def spectral_part(norm: Norm) -> Norm | None:
    """The spectral-norm part of ``norm`` (itself, or the weight part of ``spectral+<activation>``), else None."""
    if norm.name.split("+")[0] != "spectral":
        return None
    return getattr(norm, "weight_part", norm)


class GAN(NormMaintained, pl.LightningModule):
    """GAN with ``generator_norm`` / ``discriminator_norm``; WN DDI runs on the first batch (G on z, D on real data)."""

    network_roles = ("generator", "discriminator")

    def __init__(
        self,
        shape: Sequence[int],
        generator_norm: str | Norm = "none",
        discriminator_norm: str | Norm = "none",
        latent_dim: int = 64,
        generator_hidden: Sequence[int] = (128, 128),
        discriminator_hidden: Sequence[int] = (128, 128),
        base_width: int = 32,
        lr_generator: float = 2e-4,
        lr_discriminator: float = 2e-4,
        betas: Sequence[float] = (0.5, 0.999),
        d_steps: int = 1,
        lr_decay_batches: int | None = None,
        joint_discriminator_batch: bool = False,
        evaluator: Evaluator | None = None,
        eval_every: int = 1,
        ema_decay: float | None = None,
        diff_augment: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {ema_decay}")
        #: Exponential moving average of G's weights (Karras et al. 2018, and every GAN since): samples and scores
        #: come from the average, which smooths the oscillation of the two-player game; None: from G itself.
        self.ema_decay = ema_decay
        self.generator_ema: nn.Module | None = None
        #: DiffAugment policies (wnbench.gen.diffaugment) applied to every image D sees, real and generated.
        self.augment = tuple(diff_augment)
        self.shape = tuple(shape)
        self.is_image = len(self.shape) == 3
        self.generator_norm, self.discriminator_norm = (
            make_norm(generator_norm),
            make_norm(discriminator_norm),
        )
        self.latent_dim = latent_dim
        self.lr_generator, self.lr_discriminator, self.betas = lr_generator, lr_discriminator, tuple(betas)
        self.d_steps = d_steps
        self.lr_decay_batches = lr_decay_batches
        self.joint_discriminator_batch = joint_discriminator_batch
        self.evaluator = evaluator
        #: Epochs between per-epoch evaluations (curves); the caller's final evaluation always runs.
        self.eval_every = max(1, int(eval_every))
        self.save_hyperparameters(
            {"shape": self.shape, "generator_norm": self.generator_norm.label,
             "discriminator_norm": self.discriminator_norm.label, "latent_dim": latent_dim,
             "generator_hidden": list(generator_hidden), "discriminator_hidden": list(discriminator_hidden),
             "base_width": base_width, "lr_generator": lr_generator, "lr_discriminator": lr_discriminator,
             "betas": list(betas), "d_steps": d_steps, "lr_decay_batches": lr_decay_batches,
             "joint_discriminator_batch": joint_discriminator_batch, "ema_decay": ema_decay,
             "diff_augment": list(diff_augment)}
        )  # fmt: skip
        # SN-GAN: spectral norm on every D layer, input and head too (with a composition such as spectral+batch
        # the ends get its spectral part only); other norms keep D's ends plain (DCGAN).
        ends = spectral_part(self.discriminator_norm)
        if self.is_image:
            self.generator = nn.Sequential(
                ConvUp(self.generator_norm, latent_dim, self.shape, base_width), nn.Tanh()
            )
            self.discriminator = ConvDown(
                self.discriminator_norm, self.shape, 1, base_width, stem=True, ends_norm=ends
            )
        else:
            dim = self.shape[0]
            self.generator = mlp(self.generator_norm, latent_dim, generator_hidden, dim)
            self.discriminator = mlp(
                self.discriminator_norm,
                dim,
                discriminator_hidden,
                1,
                normalize_input_layer=False,
                ends_norm=ends,
            )
        self._ddi_done = False
        #: Training batches processed (Lightning's global_step counts both optimizers' steps).
        self.batches_seen = 0
        self.last_metrics: dict[str, float] = {}

    # -- sampling --------------------------------------------------------------------------
    def to_model_space(self, x: torch.Tensor) -> torch.Tensor:
        """Data -> what D sees: images [0, 1] -> [-1, 1]; points unchanged."""
        return x * 2 - 1 if self.is_image else x

    def to_data_space(self, x: torch.Tensor) -> torch.Tensor:
        return (x + 1) / 2 if self.is_image else x

    @property
    def sampler(self) -> nn.Module:
        """The network samples come from: G's moving average once it exists, else G."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    def generate_images(self, z: torch.Tensor) -> torch.Tensor:
        """The sampler's output for ``z`` in data space (images in [0, 1])."""
        return self.to_data_space(self.sampler(z))

    def noise(self, n: int, seed: int | None = None) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        if gen is None:
            return torch.randn(n, self.latent_dim, device=self.device)
        return torch.randn(n, self.latent_dim, generator=gen).to(self.device)

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        """``n`` samples in data space, with the sampler in eval mode (batch-statistics norms use running stats)."""
        sampler = self.sampler
        was_training = sampler.training
        sampler.eval()
        try:
            return torch.cat([self.generate_images(z) for z in self.noise(n, seed).split(1000)])
        finally:
            sampler.train(was_training)

    # -- data-dependent init ---------------------------------------------------------------
    @torch.no_grad()
    def data_dependent_init(self, real: torch.Tensor) -> int:
        """WN DDI: G on a batch of z, D on a batch of real data (in model space). Returns layers set."""
        count = self.generator_norm.initialize(self.generator, self.noise(len(real)))
        count += self.discriminator_norm.initialize(self.discriminator, self.to_model_space(real))
        self._ddi_done = True
        if self.ema_decay is not None:  # the average starts from G as initialized
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
        return count

    @torch.no_grad()
    def update_ema(self) -> None:
        """One step of G's moving average: parameters averaged, buffers (BN's running statistics) copied, and the
        average's projecting layers put back on their norm sets, as the optimizer's hook does for G."""
        if self.generator_ema is None:
            return
        for average, current in zip(
            self.generator_ema.parameters(), self.generator.parameters(), strict=True
        ):
            average.lerp_(current, 1.0 - self.ema_decay)
        for average, current in zip(self.generator_ema.buffers(), self.generator.buffers(), strict=True):
            average.copy_(current)
        project_(self.generator_ema)

    # -- Lightning -------------------------------------------------------------------------
    def configure_optimizers(self):
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.lr_generator, betas=self.betas)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.lr_discriminator, betas=self.betas)
        return opt_g, opt_d

    def discriminate(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D's logits for real and fake samples (each through DiffAugment when set): two forward passes, or one
        joint batch."""
        real, fake = self.augmented(real), self.augmented(fake)
        if self.joint_discriminator_batch:
            logits = self.discriminator(torch.cat([real, fake]))
            return logits[: len(real)], logits[len(real) :]
        return self.discriminator(real), self.discriminator(fake)

    def augmented(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` through the DiffAugment policies (images only; unchanged without policies)."""
        return diff_augment(x, self.augment) if self.augment and self.is_image else x

    def training_step(self, batch, batch_idx):
        real = batch[0]
        if not self._ddi_done:
            self.data_dependent_init(real)
        real = self.to_model_space(real)
        opt_g, opt_d = self.optimizers()
        n = len(real)
        step = self.batches_seen
        for _ in range(self.d_steps):
            fake = self.generator(self.noise(n)).detach()
            # Non-saturating GAN, D side: -log D(x) - log(1 - D(G(z))) with D = sigmoid(logit).
            logits_real, logits_fake = self.discriminate(real, fake)
            loss_d = F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()
            check_finite({"discriminator loss": loss_d}, step)
            opt_d.zero_grad()
            self.manual_backward(loss_d)
            opt_d.step()
        # G side (non-saturating): -log D(G(z)). D's grads from this pass are cleared before its next step.
        fake = self.generator(self.noise(n))
        logits_fake = (
            self.discriminate(real, fake)[1]
            if self.joint_discriminator_batch
            else self.discriminator(self.augmented(fake))
        )
        loss_g = F.softplus(-logits_fake).mean()
        check_finite({"generator loss": loss_g}, step)
        opt_g.zero_grad()
        self.manual_backward(loss_g)
        opt_g.step()
        self.update_ema()
        self.log_dict(
            {"loss_discriminator": loss_d, "loss_generator": loss_g},
            on_step=False,
            on_epoch=True,
            batch_size=n,
        )

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        check_finite_parameters([self.generator, self.discriminator], self.batches_seen)
        self.batches_seen += 1
        if self.lr_decay_batches:
            # Linear decay to zero over lr_decay_batches: lets both players settle at the end of training.
            factor = max(0.0, 1.0 - self.batches_seen / self.lr_decay_batches)
            for optimizer, base in zip(
                self.optimizers(), (self.lr_generator, self.lr_discriminator), strict=True
            ):
                for group in optimizer.param_groups:
                    group["lr"] = base * factor

    def evaluate(self, final: bool = False) -> dict[str, float]:
        """Run the evaluator (if any) with both networks in eval mode; returns its metrics."""
        if self.evaluator is None:
            return {}
        was_training = self.training
        self.eval()
        try:
            metrics = self.evaluator(self, final)
        finally:
            self.train(was_training)
        self.last_metrics = dict(metrics)
        return metrics

    def on_train_epoch_end(self) -> None:
        if (self.current_epoch + 1) % self.eval_every:
            return
        metrics = self.evaluate(final=False)  # the caller asks for final=True (costly extras) after fit
        if metrics:
            self.log_dict({k: float(v) for k, v in metrics.items()}, on_step=False, on_epoch=True)
