"""Layers that draw random numbers while training take them from the task's generator.

The task gives every Stochastic layer its checkpointed torch.Generator, so a resumed run draws
exactly what an uninterrupted one would (the global RNG is not in the checkpoint). Outside
training (`random` None) they fall back to the global RNG.
"""

from __future__ import annotations

import torch
from torch import nn


class Stochastic(nn.Module):
    random: torch.Generator | None = None


def use_generator(module: nn.Module, generator: torch.Generator) -> None:
    """Make every Stochastic layer of `module` draw from `generator`."""
    for layer in module.modules():
        if isinstance(layer, Stochastic):
            layer.random = generator


class Dropout(Stochastic):
    """nn.Dropout with the task's generator: zero each value with probability p while training."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape, device=x.device, generator=self.random) >= self.p
        return x * keep / (1 - self.p)
