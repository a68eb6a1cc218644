"""Latent vectors z: seeds, seeded streams, and paths between latents (lerp, slerp).

Every z is drawn on the CPU from a generator seeded for it, so a seed means the same z on
every device and in every command.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import torch

from gancli.config import MAX_SEED
from gancli.errors import UsageError

MAX_SEEDS = 100_000


def latent_batches(seed: int, n: int, latent_dim: int, batch_size: int) -> Iterator[torch.Tensor]:
    """`n` latent vectors from one seeded stream, in batches of at most `batch_size` (CPU tensors)."""
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch_size):
        yield torch.randn(min(batch_size, n - start), latent_dim, generator=generator)


def seed_latent(seed: int, latent_dim: int) -> torch.Tensor:
    """The z of one seed, (latent_dim,): seed s always gives the same vector."""
    return torch.randn(latent_dim, generator=torch.Generator().manual_seed(seed))


def seed_latents(seeds: list[int], latent_dim: int) -> torch.Tensor:
    """(len(seeds), latent_dim), row i being seed_latent(seeds[i])."""
    return torch.stack([seed_latent(s, latent_dim) for s in seeds])


def parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    """'0-24', '3,7,42' or a mix such as '0-3,9' -> a list of seeds, in the order given."""
    seeds: list[int] = []
    for part in text.replace(" ", "").split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise UsageError(f"{flag} '{text}' is not understood; write seeds like 0-24 or 3,7,42 (whole numbers >= 0).")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise UsageError(f"{flag} range '{part}' runs backwards; write it as {last}-{first}.")
        if last > MAX_SEED:
            raise UsageError(f"{flag} '{part}' is too large; seeds are whole numbers from 0 to {MAX_SEED}.")
        if len(seeds) + last - first + 1 > MAX_SEEDS:
            raise UsageError(f"{flag} '{text}' asks for more than {MAX_SEEDS:,} seeds; use --n with --seed for large batches.")
        seeds.extend(range(first, last + 1))
    return seeds


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    """Linear interpolation; t = 0 and t = 1 return the endpoints exactly."""
    if t == 0:
        return z0.clone()
    if t == 1:
        return z1.clone()
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation: follows the shell where Gaussian z's live (White, 2016).

    Falls back to lerp when the vectors are (anti)parallel and the great circle is undefined.
    """
    if t == 0:
        return z0.clone()
    if t == 1:
        return z1.clone()
    a, b = z0.double(), z1.double()
    cos = torch.dot(a, b) / (a.norm() * b.norm())
    theta = torch.arccos(cos.clamp(-1, 1))
    if theta.abs() < 1e-6 or (torch.pi - theta).abs() < 1e-6:
        return lerp(z0, z1, t)
    mixed = (torch.sin((1 - t) * theta) * a + torch.sin(t * theta) * b) / torch.sin(theta)
    return mixed.to(z0.dtype)


INTERPOLATORS = {"slerp": slerp, "lerp": lerp}


def path_fractions(steps: int) -> list[float]:
    """`steps` evenly spaced fractions from 0 to 1, both included."""
    return [i / (steps - 1) for i in range(steps)] if steps > 1 else [0.0]
