"""Networks for the VAE and GAN, built from a norm factory (``wnbench.norms``); output layers unnormalized.

Images use DCGAN-style stacks (Radford et al. 2016): 4x4 stride-2 convolutions that halve the size
down to a base of 4..7 pixels (8 -> 4, 28 -> 14 -> 7, 32 -> 16 -> 8 -> 4), LeakyReLU(0.2) going down,
ReLU going up, channel width doubling per halving. Vectors (2-D points) use MLPs. Every nonlinearity comes
from ``norm.activation`` (the net's own unless the kind brings one: forced_weight ``mp=True`` gives EDM2's mp_silu).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from wnbench.errors import UserError
from wnbench.norms import Norm

__all__ = ["conv_plan", "ConvDown", "ConvUp", "mlp"]


def conv_plan(shape: Sequence[int]) -> tuple[int, int]:
    """``(halvings, base_size)`` for an image of ``shape`` (C, H, W); UserError when the stack cannot take it.

    The size must be square and equal to ``base * 2**halvings`` with ``halvings >= 1`` and a base of 4..7
    (so 8, 12, 16, 28, 32, 64 work; 7, 30 or 9x8 do not).
    """
    if len(shape) != 3:
        raise UserError(f"image shape must be (channels, height, width), got {tuple(shape)}")
    channels, height, width = shape
    if height != width:
        raise UserError(f"image size {height}x{width} is not square; the conv networks take square images")
    size, halvings = height, 0
    while size % 2 == 0 and size // 2 >= 4:
        size //= 2
        halvings += 1
    if halvings == 0 or not 4 <= size <= 7:
        raise UserError(
            f"image size {height}x{width} cannot be taken by the conv networks: it must be a base of 4..7 "
            "times a power of two (e.g. 8, 16, 28, 32, 64)"
        )
    return halvings, size


def _leaky_relu() -> nn.Module:
    return nn.LeakyReLU(0.2)


def _widths(base_width: int, halvings: int) -> list[int]:
    return [base_width * 2**i for i in range(halvings)]


class ConvDown(nn.Module):
    """Image -> vector: ``halvings`` normalized stride-2 convs, then a linear head.

    Serves as the VAE encoder (``out_features = 2 * latent``) and the GAN discriminator (``1``, built with
    ``stem=True``: a 3x3 input layer before the stride-2 stack, so even a one-halving stack (8x8) keeps a
    normalized conv). The stem and the head are plain unless ``ends_norm`` is given, which builds both
    (normalized): DCGAN keeps D's input layer free of batch norm, which would standardize real and fake batches
    separately and hide their means and scales from D; SN-GAN (Miyato et al. 2018) puts spectral norm on every
    D layer, input and head included, because the Lipschitz bound is a product over all of them.
    """

    def __init__(
        self,
        norm: Norm,
        shape: Sequence[int],
        out_features: int,
        base_width: int = 32,
        stem: bool = False,
        ends_norm: Norm | None = None,
    ) -> None:
        super().__init__()
        halvings, base = conv_plan(shape)
        layers: list[nn.Module] = []
        channels = shape[0]
        if stem:
            stem_layer = (ends_norm or norm).conv2d(
                channels, base_width, 3, 1, 1, normalize=ends_norm is not None
            )
            layers += [stem_layer, norm.activation(_leaky_relu)]
            channels = base_width
        for width in _widths(base_width, halvings):
            layers += [norm.conv2d(channels, width, 4, 2, 1), norm.activation(_leaky_relu)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = (ends_norm or norm).linear(
            channels * base * base, out_features, normalize=ends_norm is not None
        )

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


class ConvUp(nn.Module):
    """Vector -> image: a normalized linear to a ``base x base`` map, stride-2 transposed convs up.

    The last transposed conv (to the image channels) is unnormalized; the caller adds tanh/sigmoid.
    Serves as the VAE decoder and the GAN generator.
    """

    def __init__(self, norm: Norm, in_features: int, shape: Sequence[int], base_width: int = 32) -> None:
        super().__init__()
        halvings, base = conv_plan(shape)
        widths = _widths(base_width, halvings)[::-1]  # widest first
        self.base, self.top_width = base, widths[0]
        self.project = nn.Sequential(
            norm.linear(in_features, widths[0] * base * base), norm.activation(nn.ReLU)
        )
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths, widths[1:], strict=False):
            layers += [norm.conv_transpose2d(w_in, w_out, 4, 2, 1), norm.activation(nn.ReLU)]
        layers.append(norm.conv_transpose2d(widths[-1], shape[0], 4, 2, 1, normalize=False))
        self.upsample = nn.Sequential(*layers)

    def forward(self, z):
        h = self.project(z).view(-1, self.top_width, self.base, self.base)
        return self.upsample(h)


def mlp(
    norm: Norm,
    in_features: int,
    hidden: Sequence[int],
    out_features: int,
    normalize_input_layer: bool = True,
    ends_norm: Norm | None = None,
) -> nn.Sequential:
    """A ReLU MLP: normalized hidden layers (the first one optional), a plain output layer.

    ``ends_norm`` builds the input and the output layer with that norm instead (SN-GAN's discriminator:
    spectral norm on every layer).
    """
    if not hidden:
        raise UserError("an MLP needs at least one hidden layer")
    if ends_norm is not None:
        trunk = norm.mlp(hidden[0], list(hidden[1:]), None, activation=nn.ReLU)
        return nn.Sequential(
            ends_norm.linear(in_features, hidden[0]),
            norm.activation(nn.ReLU),
            *trunk,
            ends_norm.linear(hidden[-1], out_features),
        )
    if normalize_input_layer:
        return norm.mlp(in_features, list(hidden), out_features, activation=nn.ReLU)
    first = [norm.linear(in_features, hidden[0], normalize=False), norm.activation(nn.ReLU)]
    return nn.Sequential(*first, *norm.mlp(hidden[0], list(hidden[1:]), out_features, activation=nn.ReLU))
