"""A VAE (Kingma & Welling 2014) as a LightningModule, with the norm chosen per network.

Conv encoder/decoder for images, MLPs for vectors; Bernoulli (logits) or Gaussian (learned
per-dimension std) likelihood; standard-normal prior, diagonal Gaussian posterior. Each validation pass
(on the datamodule's validation split, never its test split) logs ``val_elbo_nats``, the importance-weighted
NLL ``val_iw_nll_nats`` (Burda et al. 2016; every epoch, or only in the final evaluation when
``iw_every_epoch=False``, as it costs ``iw_samples`` decoder passes per example) and the number of active
latent units. The final evaluation (``final_evaluation = True``, run on the test split by ``train_gen``)
names them ``test_*``. ELBO and NLL in nats per example.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from wnbench.norms import Norm, make_norm

from .metrics import active_units, check_finite, check_finite_parameters
from .nets import ConvDown, ConvUp, mlp
from .norm_callback import NormMaintained

__all__ = ["VAE"]

LIKELIHOODS = ("bernoulli", "gaussian")


class VAE(NormMaintained, pl.LightningModule):
    """VAE with ``encoder_norm`` / ``decoder_norm`` from the norm factory; WN DDI runs on the first batch."""

    network_roles = ("encoder", "decoder")

    def __init__(
        self,
        shape: Sequence[int],
        encoder_norm: str | Norm = "none",
        decoder_norm: str | Norm = "none",
        latent_dim: int = 16,
        likelihood: str = "bernoulli",
        hidden: Sequence[int] = (256, 256),
        base_width: int = 32,
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.999),
        iw_samples: int = 100,
        iw_max_examples: int | None = None,
        iw_every_epoch: bool = True,
    ) -> None:
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got '{likelihood}'")
        self.shape = tuple(shape)
        self.encoder_norm, self.decoder_norm = make_norm(encoder_norm), make_norm(decoder_norm)
        self.latent_dim, self.likelihood = latent_dim, likelihood
        self.lr, self.betas = lr, tuple(betas)
        self.iw_samples, self.iw_max_examples = iw_samples, iw_max_examples
        #: IW NLL in every validation pass (False: only when ``final_evaluation`` is set, e.g. after fit).
        self.iw_every_epoch = iw_every_epoch
        self.final_evaluation = False
        self.save_hyperparameters(
            {"shape": self.shape, "encoder_norm": self.encoder_norm.label, "decoder_norm": self.decoder_norm.label,
             "latent_dim": latent_dim, "likelihood": likelihood, "hidden": list(hidden), "base_width": base_width,
             "lr": lr, "betas": list(betas), "iw_samples": iw_samples, "iw_every_epoch": iw_every_epoch}
        )  # fmt: skip
        data_dim = math.prod(self.shape)
        if len(self.shape) == 3:
            self.encoder = ConvDown(self.encoder_norm, self.shape, 2 * latent_dim, base_width)
            self.decoder = ConvUp(self.decoder_norm, latent_dim, self.shape, base_width)
        else:
            self.encoder = mlp(self.encoder_norm, data_dim, hidden, 2 * latent_dim)
            self.decoder = mlp(self.decoder_norm, latent_dim, list(hidden)[::-1], data_dim)
        # Gaussian likelihood: one learned log-std per data dimension (not data dependent).
        self.log_scale = nn.Parameter(torch.zeros(data_dim)) if likelihood == "gaussian" else None
        self._ddi_done = False
        self._val: dict[str, list] = {}

    # -- model -----------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each (N, latent_dim)."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters (logits or means) shaped like the data."""
        return self.decoder(z).reshape(-1, *self.shape)

    def log_likelihood(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """log p(x | z) per example, summed over dimensions."""
        x, params = x.flatten(1), params.flatten(1)
        if self.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(params, x, reduction="none").sum(1)
        return (
            torch.distributions.Normal(params, self.log_scale.exp(), validate_args=False).log_prob(x).sum(1)
        )

    def elbo(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-example ELBO (nats) with one reparameterized sample, and the posterior means."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        return self.log_likelihood(x, self.decode(z)) - kl, mu

    @torch.no_grad()
    def iw_log_likelihood(self, x: torch.Tensor, samples: int) -> torch.Tensor:
        """Importance-weighted estimate of log p(x) per example with ``samples`` posterior draws."""
        mu, logvar = self.encode(x)
        std = (0.5 * logvar).exp()
        prior = torch.distributions.Normal(0.0, 1.0)
        chunk = max(1, 4096 // max(1, len(x)))
        log_w = []
        for start in range(0, samples, chunk):
            k = min(chunk, samples - start)
            eps = torch.randn(k, *mu.shape, device=mu.device)
            z = mu + eps * std  # (k, N, D)
            # No argument validation: a collapsed posterior (std underflowing to 0, e.g. at a too-high lr)
            # gives a non-finite NLL, which the suite records as divergence instead of a crash.
            log_q = torch.distributions.Normal(mu, std, validate_args=False).log_prob(z).sum(-1)
            log_p_z = prior.log_prob(z).sum(-1)
            params = self.decode(z.reshape(-1, self.latent_dim))
            log_p_x = self.log_likelihood(x.repeat(k, *([1] * (x.dim() - 1))), params).view(k, -1)
            log_w.append(log_p_x + log_p_z - log_q)
        return torch.logsumexp(torch.cat(log_w), dim=0) - math.log(samples)

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        """``n`` draws of the decoder's mean (probabilities for Bernoulli), shaped like the data."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        z = torch.randn(n, self.latent_dim, generator=gen).to(self.device)
        params = self.decode(z)
        return torch.sigmoid(params) if self.likelihood == "bernoulli" else params

    # -- data-dependent init ---------------------------------------------------------------
    @torch.no_grad()
    def data_dependent_init(self, x: torch.Tensor) -> int:
        """WN DDI: encoder on ``x``, then decoder on posterior samples for ``x``. Returns layers set."""
        count = self.encoder_norm.initialize(self.encoder, x)
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        count += self.decoder_norm.initialize(self.decoder, z)
        self._ddi_done = True
        return count

    # -- Lightning -------------------------------------------------------------------------
    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr, betas=self.betas)

    def training_step(self, batch, batch_idx):
        x = batch[0]
        if not self._ddi_done:
            self.data_dependent_init(x)
        elbo, _ = self.elbo(x)
        loss = -elbo.mean()
        check_finite({"negative ELBO": loss}, self.global_step)
        self.log("train_neg_elbo_nats", loss, on_step=False, on_epoch=True, batch_size=len(x))
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        check_finite_parameters([self], self.global_step)

    def on_validation_epoch_start(self) -> None:
        self._val = {"elbo": [], "iw": [], "mu": []}

    def validation_step(self, batch, batch_idx):
        x = batch[0]
        elbo, mu = self.elbo(x)
        self._val["elbo"].append(elbo)
        self._val["mu"].append(mu)
        seen = sum(len(t) for t in self._val["iw"])
        wanted = self.iw_samples > 0 and (self.iw_every_epoch or self.final_evaluation)
        if wanted and (self.iw_max_examples is None or seen < self.iw_max_examples):
            take = x if self.iw_max_examples is None else x[: self.iw_max_examples - seen]
            self._val["iw"].append(self.iw_log_likelihood(take, self.iw_samples))

    def on_validation_epoch_end(self) -> None:
        metrics = self.validation_metrics()
        self.log_dict(metrics, on_step=False, on_epoch=True)

    def validation_metrics(self) -> dict[str, float]:
        """Aggregate the pass: ELBO, IW NLL, active units; ``val_*`` per epoch, ``test_*`` in the final evaluation."""
        split = "test" if self.final_evaluation else "val"
        metrics = {f"{split}_elbo_nats": float(torch.cat(self._val["elbo"]).mean())}
        if self._val["iw"]:
            metrics[f"{split}_iw_nll_nats"] = float(-torch.cat(self._val["iw"]).mean())
        metrics["active_units"] = float(active_units(torch.cat(self._val["mu"])))
        return metrics
