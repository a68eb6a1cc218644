"""The second stage of a multi-stage GAN: a convolutional up-sampler trained adversarially.

G: low-res image -> features -> residual blocks -> pixel-shuffle x`scale` -> image, added to
the bicubic upsampling. D: a PatchGAN-style convolutional discriminator at the high resolution,
averaging its patch logits into one logit per image. G's loss adds an L1 content term
(`--content-weight`) that keeps the output faithful to the input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RESIDUAL_BLOCKS = 4


class _Residual(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(True),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width),
        )  # fmt: skip

    def forward(self, x):
        return x + self.body(x)


class Upscaler(nn.Module):
    """low-res (B, C, h, w) in [-1, 1] -> (B, C, h*scale, w*scale)."""

    def __init__(self, config):
        super().__init__()
        self.scale = config.scale
        w = config.generator_width
        self.head = nn.Sequential(nn.Conv2d(config.channels, w, 3, padding=1), nn.ReLU(True))  # (B, w, h, w)
        self.blocks = nn.Sequential(*[_Residual(w) for _ in range(RESIDUAL_BLOCKS)])
        self.up = nn.Sequential(nn.Conv2d(w, w * config.scale**2, 3, padding=1), nn.PixelShuffle(config.scale), nn.ReLU(True))
        self.tail = nn.Conv2d(w, config.channels, 3, padding=1)  # (B, C, h*scale, w*scale)
        nn.init.zeros_(self.tail.weight)  # start exactly at bicubic
        nn.init.zeros_(self.tail.bias)

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        h = self.head(low)
        detail = self.tail(self.up(h + self.blocks(h)))
        return F.interpolate(low, scale_factor=self.scale, mode="bicubic", align_corners=False) + detail


class Discriminator(nn.Module):
    """high-res image (B, C, H, W) -> one logit per image (B,), the mean of patch logits."""

    def __init__(self, config):
        super().__init__()
        w = config.discriminator_width
        self.net = nn.Sequential(
            nn.Conv2d(config.channels, w, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(w, w * 2, 4, 2, 1), nn.BatchNorm2d(w * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(w * 2, w * 4, 3, 1, 1), nn.BatchNorm2d(w * 4), nn.LeakyReLU(0.2, True),
            nn.Conv2d(w * 4, 1, 3, 1, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).mean(dim=(1, 2, 3))
