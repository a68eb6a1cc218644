"""Differentiable augmentation for small datasets (DiffAugment, Zhao et al., 2020).

The same random colour, translation and cutout are applied to every image D sees, real or
fake, in D's step and in G's; being differentiable, they let G's gradients pass. D then cannot
memorise a few hundred images, and G is not pushed to reproduce the augmentations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

def diff_augment(x: torch.Tensor, policy: tuple[str, ...], generator: torch.Generator | None = None) -> torch.Tensor:
    for name in policy:
        x = _AUGMENTS[name](x, generator)
    return x


def _rand(x: torch.Tensor, generator, *shape) -> torch.Tensor:
    return torch.rand(x.shape[0], *shape, device=x.device, generator=generator, dtype=x.dtype)


def _color(x, generator):
    x = x + (_rand(x, generator, 1, 1, 1) - 0.5)  # brightness (images in [-1, 1]: half the paper's shift in [0, 1] units x 2)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x, generator, 1, 1, 1) * 2) + mean  # saturation
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_rand(x, generator, 1, 1, 1) + 0.5) + mean  # contrast


def _translation(x, generator, ratio: float = 0.125):
    """Shift each image by up to ratio of its size, filling with zeros (grey), by one gather."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = (torch.rand(b, 1, 1, device=x.device, generator=generator) * (2 * sh + 1)).long() - sh
    tx = (torch.rand(b, 1, 1, device=x.device, generator=generator) * (2 * sw + 1)).long() - sw
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = (gy.unsqueeze(0) + ty + 1).clamp(0, h + 1)
    gx = (gx.unsqueeze(0) + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])  # out-of-range coordinates land on the zero border
    flat = padded.permute(0, 2, 3, 1)[torch.arange(b, device=x.device).view(b, 1, 1), gy, gx]
    return flat.permute(0, 3, 1, 2).contiguous()


def _cutout(x, generator, ratio: float = 0.5):
    """Zero a square of half the image's size, centred at a random pixel (clipped at the edges)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = (torch.rand(b, 1, 1, device=x.device, generator=generator) * h).long() - ch // 2
    left = (torch.rand(b, 1, 1, device=x.device, generator=generator) * w).long() - cw // 2
    gy = torch.arange(h, device=x.device).view(1, h, 1)
    gx = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (gy >= top) & (gy < top + ch) & (gx >= left) & (gx < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_AUGMENTS = {"color": _color, "translation": _translation, "cutout": _cutout}
