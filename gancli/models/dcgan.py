"""DCGAN (Radford et al., 2015) at 28, 32, 64 and 128 pixels, plus the Keras upsample+conv generator."""

from __future__ import annotations

import math

import torch
from torch import nn


def _stages(image_size: int) -> tuple[int, int]:
    """(base, doublings): the first feature map is base x base and doubles up to image_size."""
    base = 7 if image_size % 7 == 0 else 4  # 28 = 7 * 2^2; 32, 64, 128 = 4 * 2^k
    return base, int(math.log2(image_size // base))


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) for convolutions and linear layers, N(1, 0.02) for BatchNorm scales (the paper's init)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """z (B, latent_dim) -> image (B, C, S, S) in [-1, 1].

    The projection of z to a base x base map (the first transposed convolution acts on a 1x1
    input, so it is the paper's dense projection), then stride-2 transposed convolutions that
    halve the channels while doubling the size. With upsample="nearest", each doubling is a
    nearest-neighbour upsample followed by a 5x5 convolution instead (the Keras DCGAN variant,
    which avoids checkerboard artefacts).
    """

    def __init__(self, config):
        super().__init__()
        base, doublings = _stages(config.image_size)
        # e.g. 64x64, width 64: 512 @ 4x4 -> 256 @ 8 -> 128 @ 16 -> 64 @ 32 -> C @ 64
        widths = [config.generator_width * 2 ** (doublings - 1 - i) for i in range(doublings)]
        if config.upsample == "nearest":
            layers: list[nn.Module] = [
                nn.Linear(config.latent_dim, widths[0] * base * base, bias=False),
                nn.BatchNorm1d(widths[0] * base * base),
                nn.ReLU(True),
                nn.Unflatten(1, (widths[0], base, base)),  # (B, w0, base, base)
            ]
            outputs = widths[1:] + [config.channels]
            for i, (w_in, w_out) in enumerate(zip(widths, outputs)):
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w_in, w_out, 5, 1, 2, bias=False)]
                if i < len(outputs) - 1:  # the last convolution feeds tanh directly
                    layers += [nn.BatchNorm2d(w_out), nn.ReLU(True)]
            self.latent_shape = (config.latent_dim,)
        else:
            layers = [
                nn.ConvTranspose2d(config.latent_dim, widths[0], base, 1, 0, bias=False),  # (B, w0, base, base)
                nn.BatchNorm2d(widths[0]),
                nn.ReLU(True),
            ]
            for w_in, w_out in zip(widths, widths[1:]):
                layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU(True)]
            layers.append(nn.ConvTranspose2d(widths[-1], config.channels, 4, 2, 1, bias=False))  # (B, C, S, S)
            self.latent_shape = (config.latent_dim, 1, 1)
        layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(-1, *self.latent_shape))


class Discriminator(nn.Module):
    """image (B, C, S, S) -> one logit per image (B,): stride-2 convolutions, BatchNorm, LeakyReLU(0.2)."""

    def __init__(self, config):
        super().__init__()
        base, doublings = _stages(config.image_size)
        # e.g. 64x64, width 64: C @ 64 -> 64 @ 32 -> 128 @ 16 -> 256 @ 8 -> 512 @ 4 -> 1
        widths = [config.discriminator_width * 2**i for i in range(doublings)]
        layers: list[nn.Module] = [nn.Conv2d(config.channels, widths[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(widths[-1], 1, base, 1, 0, bias=False))  # (B, 1, 1, 1)
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)
