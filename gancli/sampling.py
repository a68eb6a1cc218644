"""Generating images from a trained generator, in batches so memory stays bounded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from gancli import checkpoints
from gancli.config import TrainConfig
from gancli.images import to_uint8
from gancli.latent import latent_batches
from gancli.models import build_generator

# Fixed so that --seed S gives the same images whatever the device or memory: the z stream is
# drawn in batches of this size.
SAMPLE_BATCH = 256


def load_generator(path: Path, device: torch.device) -> tuple[torch.nn.Module, TrainConfig]:
    """The generator of a checkpoint, in eval mode on `device`, and its config."""
    checkpoint = checkpoints.load_checkpoint(path, prefixes=("generator",))
    generator = build_generator(checkpoint.config)
    checkpoints.load_state(generator, checkpoint, "generator")
    return generator.to(device).eval(), checkpoint.config


@torch.no_grad()
def generate(generator: torch.nn.Module, config: TrainConfig, n: int, seed: int, device: torch.device) -> Iterator[torch.Tensor]:
    """`n` images as uint8 (B, C, H, W) batches; the same seed always gives the same images."""
    for z in latent_batches(seed, n, config.latent_dim, SAMPLE_BATCH):
        yield to_uint8(generator(z.to(device)))
