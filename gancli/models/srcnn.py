"""SRCNN (Dong et al., 2014): bicubic pre-upsampling, then 9x9 / 3x3 / 5x5 convolutions.

The network predicts the detail that bicubic upsampling misses and adds it to the bicubic
image (a global residual, as in VDSR): the same three layers, but it trains in minutes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Upscaler(nn.Module):
    """low-res (B, C, h, w) in [-1, 1] -> (B, C, h*scale, w*scale)."""

    def __init__(self, config):
        super().__init__()
        self.scale = config.scale
        n1 = config.generator_width  # e.g. 64-32 (the paper's), or 256-128
        n2 = max(1, n1 // 2)
        self.net = nn.Sequential(
            nn.Conv2d(config.channels, n1, 9, padding=4, padding_mode="replicate"),  # patch extraction
            nn.ReLU(True),
            nn.Conv2d(n1, n2, 3, padding=1, padding_mode="replicate"),  # non-linear mapping
            nn.ReLU(True),
            nn.Conv2d(n2, config.channels, 5, padding=2, padding_mode="replicate"),  # reconstruction
        )
        nn.init.zeros_(self.net[-1].weight)  # start exactly at bicubic
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        upsampled = F.interpolate(low, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return upsampled + self.net(upsampled)
