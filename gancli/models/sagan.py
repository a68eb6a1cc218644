"""SAGAN (Zhang et al., 2019): DCGAN-shaped networks with self-attention, spectral norm in G and D.

Convolutions see a few pixels; a self-attention block lets every position of a feature map
draw on every other, which helps global structure (both sleeves of a shirt, both legs of
trousers). Its output is scaled by a learned gamma that starts at 0, so training begins as a
plain convolutional GAN and mixes attention in as it pays off. Trained with the hinge loss and
two learning rates (1e-4 for G, 4e-4 for D, Adam betas 0 / 0.9): the architecture's defaults.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gancli.errors import UsageError
from gancli.models import dcgan
from gancli.models.dcgan import feature_sizes, stride2_kernel


def attention_size(config) -> int:
    """The feature-map side where the attention blocks sit: --attention-size, or half the image side."""
    sizes = feature_sizes(config.image_size)
    wanted = config.attention_size or sizes[-2]
    if wanted not in sizes[1:]:
        valid = ", ".join(str(s) for s in sizes[1:])
        raise UsageError(f"--attention-size {wanted} is not a feature-map side of sagan at {config.image_size} px; use one of {valid}.")
    return wanted


class SelfAttention(nn.Module):
    """x + gamma * attention(x): 1x1 convolutions give queries and keys (C/8) and values (C/2) per position."""

    def __init__(self, channels: int):
        super().__init__()
        inner = max(channels // 8, 1)
        self.query = spectral_norm(nn.Conv2d(channels, inner, 1, bias=False))
        self.key = spectral_norm(nn.Conv2d(channels, inner, 1, bias=False))
        self.value = spectral_norm(nn.Conv2d(channels, max(channels // 2, 1), 1, bias=False))
        self.out = spectral_norm(nn.Conv2d(max(channels // 2, 1), channels, 1, bias=False))
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q, k, v = (layer(x).flatten(2).transpose(1, 2) for layer in (self.query, self.key, self.value))  # (B, HW, D)
        attended = F.scaled_dot_product_attention(q, k, v)  # each position: a softmax-weighted mix of all values
        return x + self.gamma * self.out(attended.transpose(1, 2).reshape(b, -1, h, w))


class Generator(nn.Module):
    """z (B, latent_dim) -> image (B, C, S, S): DCGAN's transposed convolutions with spectral norm and BatchNorm, attention at attention_size."""

    def __init__(self, config):
        super().__init__()
        sizes = feature_sizes(config.image_size)
        widths = [config.generator_width * 2 ** (len(sizes) - 2 - i) for i in range(len(sizes) - 1)]
        at = attention_size(config)
        layers: list[nn.Module] = [
            spectral_norm(nn.ConvTranspose2d(config.latent_dim, widths[0], 4, 1, 0, bias=False)),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for i, (w_in, w_out) in enumerate(zip(widths, widths[1:])):
            layers += [
                spectral_norm(nn.ConvTranspose2d(w_in, w_out, stride2_kernel(sizes[i], sizes[i + 1]), 2, 1, bias=False)),
                nn.BatchNorm2d(w_out),
                nn.ReLU(True),
            ]
            if sizes[i + 1] == at:
                layers.append(SelfAttention(w_out))
        layers += [spectral_norm(nn.ConvTranspose2d(widths[-1], config.channels, stride2_kernel(sizes[-2], sizes[-1]), 2, 1)), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.latent_shape = (config.latent_dim, 1, 1)  # PyTorch's default init: N(0, 0.02) would act before spectral norm rescales

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(-1, *self.latent_shape))


class Discriminator(dcgan.Discriminator):
    """image -> one logit: DCGAN's stride-2 convolutions, spectral norm instead of BatchNorm, attention at attention_size."""

    def __init__(self, config):
        self.attention_at = attention_size(config)
        super().__init__(config)

    def stage(self, index: int, w_in: int, w_out: int, kernel: int, side: int, config) -> list[nn.Module]:
        layers = [spectral_norm(nn.Conv2d(w_in, w_out, kernel, 2, 1)), nn.LeakyReLU(0.1, True)]
        return layers + [SelfAttention(w_out)] if side == self.attention_at else layers

    def make_head(self, width: int) -> nn.Module:
        return spectral_norm(nn.Conv2d(width, 1, 4, 1, 0))

    def initialise(self) -> None:
        pass  # PyTorch's default init: N(0, 0.02) would act before spectral norm rescales
