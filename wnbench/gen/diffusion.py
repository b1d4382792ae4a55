"""A small diffusion model for 2-D points as a LightningModule, its denoiser built from the norm factory.

Formulation: DDPM (Ho et al. 2020) -- epsilon prediction, the simple loss ``|eps - eps_theta(x_t, t)|^2``,
ancestral sampling from the Gaussian posterior q(x_s | x_t, x_0) -- in continuous time with the cosine schedule
(Nichol & Dhariwal 2021): ``alpha_bar(t) = cos^2(pi/2 (t + 0.008) / 1.008) / cos^2(pi/2 0.008 / 1.008)``, t ~ U(0, 1),
clipped below at 1e-4 so that t = 1 keeps a sliver of signal (as DDPM's discrete cosine schedule clips its betas).
Why this one rather than EDM's preconditioning (Karras et al. 2022): it is the formulation the C2-diffusion claim
names as the standard denoiser objective, it has no sigma_data to tune per dataset (points are standardized by the
training split's per-coordinate mean and std, kept as buffers), and with t continuous the training never fixes a
step count: the sampler may take any number of steps >= 1 -- more than any "training" count is legitimate,
fewer is the usual coarse DDPM sampler (Kingma et al. 2021 train and sample the same continuous-time way).

Denoiser: sinusoidal features of t (DDPM's transformer-style embedding of 1000 t) through a normalized linear layer
and SiLU; the points through a normalized input layer; ``blocks`` residual blocks ``h + W2 act(W1 act(h) + U e)``,
every ``W``/``U`` from ``norm.linear`` and every nonlinearity from ``norm.activation`` (forced_weight with
``mp=True`` gets EDM2's mp_silu); a plain output layer (as every wnbench network's output). The same
architecture for every norm; residual sums are plain sums (the nets are a few blocks deep). Weight projection
(forced_weight, nap, hyperspherical) after every optimizer step comes from the NormCallback every Trainer gets
through :class:`~wnbench.gen.norm_callback.NormMaintained`, as for the VAE and the GAN; WN data-dependent init runs on the first training batch (noised at random t).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from wnbench.norms import Norm, make_norm

from .metrics import check_finite, check_finite_parameters
from .norm_callback import NormMaintained

__all__ = ["Diffusion", "Denoiser", "alpha_bar"]

#: Cosine schedule offset (Nichol & Dhariwal 2021) and the floor on alpha_bar at t = 1.
_S, ALPHA_BAR_MIN = 0.008, 1e-4
#: x_0 estimates are clipped to this many standard deviations of the (standardized) data, as DDPM clips images.
CLIP_STD = 5.0


def alpha_bar(t: torch.Tensor) -> torch.Tensor:
    """The cosine schedule's signal share ``alpha_bar(t)`` for t in [0, 1], clipped to [1e-4, 1]."""
    f = torch.cos(0.5 * math.pi * (t + _S) / (1 + _S)) ** 2
    f0 = math.cos(0.5 * math.pi * _S / (1 + _S)) ** 2
    return (f / f0).clamp(ALPHA_BAR_MIN, 1.0)


def time_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """DDPM's sinusoidal embedding of ``1000 t`` (the discrete model's step index), ``dim`` features."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=t.dtype) / half)
    args = 1000.0 * t[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class _Block(nn.Module):
    """``h + W2 act(W1 act(h) + U e)``: a residual MLP block conditioned on the time embedding ``e``."""

    def __init__(self, norm: Norm, width: int) -> None:
        super().__init__()
        self.act_in = norm.activation(nn.SiLU)
        self.fc1 = norm.linear(width, width)
        self.time = norm.linear(width, width)
        self.act_mid = norm.activation(nn.SiLU)
        self.fc2 = norm.linear(width, width)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        r = self.fc1(self.act_in(h)) + self.time(emb)
        return h + self.fc2(self.act_mid(r))


class Denoiser(nn.Module):
    """epsilon_theta(x_t, t) for points of ``dim`` coordinates: time embedding, residual blocks, plain output."""

    def __init__(
        self, norm: Norm, dim: int = 2, width: int = 128, blocks: int = 2, time_dim: int = 32
    ) -> None:
        super().__init__()
        self.time_dim = time_dim
        self.embed = nn.Sequential(norm.linear(time_dim, width), norm.activation(nn.SiLU))
        self.input = norm.linear(dim, width)
        self.blocks = nn.ModuleList(_Block(norm, width) for _ in range(blocks))
        self.out_act = norm.activation(nn.SiLU)
        self.output = norm.linear(width, dim, normalize=False)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.embed(time_features(t, self.time_dim))
        h = self.input(x)
        for block in self.blocks:
            h = block(h, emb)
        return self.output(self.out_act(h))


class Diffusion(NormMaintained, pl.LightningModule):
    """DDPM on 2-D points with a ``norm``-built denoiser; ``sample(n, seed, steps)`` is the ancestral sampler.

    ``data_mean``/``data_std`` (the training split's, per coordinate) standardize the points the model sees and
    are kept as buffers, so a checkpoint samples the same points. An optional ``evaluator(model, final)`` gives the
    metrics logged every ``eval_every``-th epoch (and by :meth:`evaluate` after training). Any Trainer that fits
    it gets the NormCallback (:class:`NormMaintained`): projection after every step, weight diagnostics.
    """

    network_roles = ("denoiser",)

    def __init__(
        self,
        shape: Sequence[int] = (2,),
        norm: str | Norm = "none",
        width: int = 128,
        blocks: int = 2,
        time_features: int = 32,
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.999),
        sample_steps: int = 100,
        lr_decay_batches: int | None = None,
        data_mean: Sequence[float] | None = None,
        data_std: Sequence[float] | None = None,
        evaluator=None,
        eval_every: int = 1,
    ) -> None:
        super().__init__()
        self.shape = tuple(shape)
        if len(self.shape) != 1:
            raise ValueError(f"the diffusion model takes points (a 1-d shape), got shape {self.shape}")
        if sample_steps < 1:
            raise ValueError(f"sample_steps must be >= 1, got {sample_steps}")
        self.norm = make_norm(norm)
        self.lr, self.betas, self.sample_steps = lr, tuple(betas), int(sample_steps)
        self.lr_decay_batches = lr_decay_batches
        dim = self.shape[0]
        mean = torch.zeros(dim) if data_mean is None else torch.as_tensor(data_mean, dtype=torch.float32)
        std = torch.ones(dim) if data_std is None else torch.as_tensor(data_std, dtype=torch.float32)
        if mean.shape != (dim,) or std.shape != (dim,) or not bool((std > 0).all()):
            raise ValueError(f"data_mean and data_std must be {dim} values, the std positive")
        self.register_buffer("data_mean", mean.clone())
        self.register_buffer("data_std", std.clone())
        self.save_hyperparameters(
            {"shape": list(self.shape), "norm": self.norm.label, "width": width, "blocks": blocks,
             "time_features": time_features, "lr": lr, "betas": list(betas), "sample_steps": sample_steps,
             "lr_decay_batches": lr_decay_batches}
        )  # fmt: skip
        self.denoiser = Denoiser(self.norm, dim, width, blocks, time_features)
        self.evaluator = evaluator
        self.eval_every = max(1, int(eval_every))
        self._ddi_done = False
        self.last_metrics: dict[str, float] = {}

    # -- model ---------------------------------------------------------------------------------
    def noised(
        self, x0: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_t, t, eps)`` for standardized points ``x0``: t ~ U(0, 1), x_t = sqrt(ab) x0 + sqrt(1 - ab) eps."""
        t = torch.rand(len(x0), generator=generator).to(x0.device)
        eps = torch.randn(x0.shape, generator=generator).to(x0.device)
        ab = alpha_bar(t)[:, None]
        return ab.sqrt() * x0 + (1 - ab).sqrt() * eps, t, eps

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The simple DDPM loss on data-space points ``x``: mean squared error of the predicted noise."""
        x_t, t, eps = self.noised((x - self.data_mean) / self.data_std, generator)
        return F.mse_loss(self.denoiser(x_t, t), eps)

    @torch.no_grad()
    def denoising_loss(self, x: torch.Tensor, seed: int = 0) -> float:
        """The loss on ``x`` with t and noise from ``seed`` (eval mode): comparable across models and checkpoints."""
        was_training = self.training
        self.eval()
        try:
            return float(self.loss(x.to(self.device), torch.Generator().manual_seed(seed)))
        finally:
            self.train(was_training)

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None, steps: int | None = None) -> torch.Tensor:
        """``n`` points (data space, on the CPU) by ancestral sampling over ``steps`` (default ``sample_steps``)
        equal steps from t = 1 to 0; ``seed`` fixes the initial and the per-step noise. Eval mode throughout."""
        steps = self.sample_steps if steps is None else int(steps)
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        was_training = self.training
        self.eval()
        try:
            x = torch.randn(n, self.shape[0], generator=gen).to(self.device)
            grid = torch.linspace(1.0, 0.0, steps + 1, device=self.device)
            for t_now, t_next in zip(grid[:-1], grid[1:], strict=True):
                x = self._step(x, t_now, t_next, gen)
            return (x * self.data_std + self.data_mean).cpu()
        finally:
            self.train(was_training)

    def _step(
        self, x: torch.Tensor, t: torch.Tensor, s: torch.Tensor, gen: torch.Generator | None
    ) -> torch.Tensor:
        """One draw from q(x_s | x_t, x0_hat) with x0_hat from the predicted noise (DDPM's ancestral step)."""
        ab_t, ab_s = alpha_bar(t), alpha_bar(s)
        eps = self.denoiser(x, t.expand(len(x)))
        x0 = ((x - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()).clamp(-CLIP_STD, CLIP_STD)
        a_ts = ab_t / ab_s  # alpha_{t|s}^2
        var_ts = 1 - a_ts  # sigma_{t|s}^2
        mean = (a_ts.sqrt() * (1 - ab_s) * x + ab_s.sqrt() * var_ts * x0) / (1 - ab_t)
        if float(s) <= 0.0:
            return mean
        var = var_ts * (1 - ab_s) / (1 - ab_t)
        return mean + var.sqrt() * torch.randn(x.shape, generator=gen).to(x.device)

    # -- data-dependent init -------------------------------------------------------------------
    @torch.no_grad()
    def data_dependent_init(self, x: torch.Tensor) -> int:
        """WN DDI of the denoiser on the first batch, noised at random t. Returns layers set."""
        x_t, t, _ = self.noised((x - self.data_mean) / self.data_std)
        count = self.norm.initialize(self.denoiser, (x_t, t))
        self._ddi_done = True
        return count

    # -- Lightning -----------------------------------------------------------------------------
    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.denoiser.parameters(), lr=self.lr, betas=self.betas)
        if not self.lr_decay_batches:
            return optimizer
        # Linear decay to zero over lr_decay_batches (as the GAN's): the last weights are an average-like iterate.
        total = self.lr_decay_batches
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1.0 - step / total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def training_step(self, batch, batch_idx):
        x = batch[0]
        if not self._ddi_done:
            self.data_dependent_init(x)
        loss = self.loss(x)
        check_finite({"denoising loss": loss}, self.global_step)
        self.log("loss_denoising", loss, on_step=False, on_epoch=True, batch_size=len(x))
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        check_finite_parameters([self.denoiser], self.global_step)

    def evaluate(self, final: bool = False) -> dict[str, float]:
        """The evaluator's metrics (if any) in eval mode, plus the denoising loss on its test points when final."""
        if self.evaluator is None:
            return {}
        metrics = dict(self.evaluator(self, final))
        if final:
            metrics["denoising_loss_test"] = self.denoising_loss(self.evaluator.test)
        self.last_metrics = metrics
        return metrics

    def on_train_epoch_end(self) -> None:
        if (self.current_epoch + 1) % self.eval_every:
            return
        metrics = self.evaluate(final=False)
        if metrics:
            self.log_dict({k: float(v) for k, v in metrics.items()}, on_step=False, on_epoch=True)
