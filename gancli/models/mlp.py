"""The classic fully-connected GAN (Goodfellow et al., 2014), in its common BatchNorm form."""

from __future__ import annotations

import math

import torch
from torch import nn


class Generator(nn.Module):
    """z (B, latent_dim) -> 256 -> 512 -> 1024 -> image (B, C, H, W) in [-1, 1]."""

    def __init__(self, config):
        super().__init__()
        self.image_shape = tuple(config.image_shape)
        self.net = nn.Sequential(
            nn.Linear(config.latent_dim, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 512),
            nn.BatchNorm1d(512),
            nn.LeakyReLU(0.2),
            nn.Linear(512, 1024),
            nn.BatchNorm1d(1024),
            nn.LeakyReLU(0.2),
            nn.Linear(1024, math.prod(self.image_shape)),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.image_shape)


class Discriminator(nn.Module):
    """image (B, C, H, W) -> 512 -> 256 -> one logit per image (B,).

    `extra_inputs` widens the first layer for values appended to the flattened image (cgan's label embedding).
    """

    def __init__(self, config, extra_inputs: int = 0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(config.image_shape) + extra_inputs, 512),
            nn.LeakyReLU(0.2),
            nn.Linear(512, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)
