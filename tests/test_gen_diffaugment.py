"""DiffAugment (wnbench.gen.diffaugment): what each policy does to an image, that gradients pass through it, and
that a GAN applies it to every image its discriminator sees."""

from __future__ import annotations

import pytest
import torch

from wnbench.gen import GAN
from wnbench.gen.config import GANHyperparams
from wnbench.gen.diffaugment import cutout, diff_augment, translation


def test_translation_moves_whole_images_by_at_most_an_eighth_of_their_size():
    torch.manual_seed(0)
    x = torch.zeros(512, 1, 28, 28)
    x[:, :, 14, 14] = 1.0
    moved = translation(x)
    assert torch.equal(moved.sum((1, 2, 3)), torch.ones(512))  # a shift of <= 4 px keeps the centre pixel
    where = moved[:, 0].flatten(1).argmax(1)
    dy, dx = where // 28 - 14, where % 28 - 14
    assert dy.abs().max() == 4 and dx.abs().max() == 4 and set(dy.tolist()) == set(range(-4, 5))
    edge = torch.ones(64, 1, 8, 8)
    assert (translation(edge) == 0).any()  # what is shifted in is zero


def test_cutout_zeroes_one_half_size_square_per_image():
    torch.manual_seed(0)
    holes = cutout(torch.ones(256, 1, 28, 28))[:, 0] == 0
    counts = holes.flatten(1).sum(1)
    assert counts.max() == 14 * 14 and counts.min() >= 7 * 7  # whole inside, or clipped at a corner
    rows, cols = holes.any(2), holes.any(1)  # each hole is one axis-aligned rectangle
    assert torch.equal(holes.flatten(1).sum(1), rows.sum(1) * cols.sum(1))


def test_gradients_pass_through_both_policies_and_unknown_names_are_refused():
    x = torch.rand(8, 1, 16, 16, requires_grad=True)
    diff_augment(x, ["translation", "cutout"]).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="unknown DiffAugment policy 'flip'"):
        diff_augment(x, ["flip"])
    with pytest.raises(ValueError, match="diff_augment"):
        GANHyperparams(diff_augment=["flip"])


def test_a_gan_augments_what_its_discriminator_sees_and_leaves_points_alone():
    torch.manual_seed(0)
    gan = GAN((1, 8, 8), diff_augment=("cutout",), base_width=4, latent_dim=4)
    seen = []
    gan.discriminator.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    real, fake = torch.ones(16, 1, 8, 8), torch.ones(16, 1, 8, 8)
    gan.discriminate(real, fake)
    assert len(seen) == 2 and all((batch == 0).any() for batch in seen)
    points = GAN((2,), diff_augment=("cutout",), latent_dim=2)
    x = torch.randn(5, 2)
    assert torch.equal(points.augmented(x), x)
