"""Latent vectors z from seeds: drawn on the CPU so a seed means the same z on every device."""

from __future__ import annotations

from collections.abc import Iterator

import torch


def latent_batches(seed: int, n: int, latent_dim: int, batch_size: int) -> Iterator[torch.Tensor]:
    """`n` latent vectors from one seeded stream, in batches of at most `batch_size` (CPU tensors)."""
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch_size):
        yield torch.randn(min(batch_size, n - start), latent_dim, generator=generator)
