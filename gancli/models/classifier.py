"""The dataset classifier behind `gancli eval`: labels for class coverage, features for FID offline.

A small VGG-style network: two blocks of two 3x3 convolutions, each block halving the size,
then a 128-wide feature layer. Its features play the role Inception's pool3 plays for
ImageNet-like data: a space where distances between images mean something for this dataset.
"""

from __future__ import annotations

import torch
from torch import nn

from gancli.models.stochastic import Dropout

FEATURES = 128


class Classifier(nn.Module):
    """image (B, C, S, S) in [-1, 1] -> class logits (B, K); features(x) -> (B, 128)."""

    def __init__(self, config):
        super().__init__()
        c = config.channels
        self.body = nn.Sequential(
            nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(True), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(True), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(64 * 16, FEATURES), nn.ReLU(True),
        )  # fmt: skip
        self.dropout = Dropout(0.3)  # training only: features and logits at eval time are deterministic
        self.head = nn.Linear(FEATURES, max(config.num_classes, 2))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.body(x)))
