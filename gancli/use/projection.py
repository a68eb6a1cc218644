"""Projection: the latent that makes a trained generator draw a given image, found by gradient descent.

For the DCGAN family the latent is z, started from the nearest of a few hundred random samples and kept near the
Gaussian shell |z| = sqrt(d) where the generator was trained; for style-based generators it is w+ (one style per
layer), started from the average w as in StyleGAN2-ADA's projector. The loss is pixel L2, plus (with a weight) the
distance of the run's own discriminator features, or of a dataset classifier's. Conditional runs hold the class given, or try each class for a
quarter of the steps and keep the best. Images are optimised in batches; each image's loss is its own, so its
latent does not depend on the others (Adam is per element).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gancli.errors import UsageError

STARTS = 256  # random samples an image's z starts from the nearest of
LR = 0.05
DEFAULT_STEPS = 1000  # measured: docs/projection.md (333: -1.6 dB, 3000: +0.9 dB at 3x the time)
DEFAULT_FEATURES = 0.0  # weight of the discriminator-feature term (measured: docs/projection.md)
PRIOR = 0.01  # weight of the Gaussian-shell prior on z
STYLES_SHARED = False  # style-based runs: one w for every layer (True) or one per layer, w+ (measured: docs/projection.md)


@dataclass
class Projected:
    """What Model.project returns: a Latent per image, the (converted) targets, the reconstructions as
    `sample --latent` draws them, their PSNR in dB, and the indices of the images that were converted."""

    latents: list
    targets: torch.Tensor
    images: torch.Tensor
    psnr: list[float]
    converted: list[int]


@dataclass
class Found:
    """One image's projection: its latent (space "z" or "w+"), class, and final losses."""

    value: torch.Tensor
    space: str
    label: int | None
    losses: dict


def fit_images(images: list[torch.Tensor], size: int, channels: int) -> tuple[torch.Tensor, list[int]]:
    """uint8 (C, H, W) images as the run draws them: shorter side resized to `size` and centre-cropped (antialiased),
    greyscale or RGB as the run's channels (ITU-R 601 luma, as Pillow's L). Returns the batch and which were changed."""
    from torchvision.transforms import functional as TF

    out, changed = [], []
    for i, image in enumerate(images):
        if image.dtype != torch.uint8 or image.dim() != 3 or image.shape[0] not in (1, 3):
            raise UsageError("project() takes uint8 images (C, H, W) with 1 or 3 channels, or a batch (N, C, H, W).")
        x = image
        if tuple(x.shape[1:]) != (size, size):
            x = TF.center_crop(TF.resize(x, size, antialias=True), size)
        if x.shape[0] != channels:
            x = x.repeat(3, 1, 1) if channels == 3 else ((x[0] * 299 + x[1] * 587 + x[2] * 114 + 500) // 1000).to(torch.uint8)[None]
        if x is not image:
            changed.append(i)
        out.append(x)
    return torch.stack(out), changed


def discriminator_features(discriminator: torch.nn.Module):
    """(image -> list of the discriminator's convolution outputs, a function that removes the hooks)."""
    taken: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: taken.append(out)) for m in discriminator.modules() if isinstance(m, torch.nn.Conv2d)]

    def features(x: torch.Tensor, *condition) -> list[torch.Tensor]:
        taken.clear()
        discriminator(x, *condition)
        return list(taken)

    return features, lambda: [h.remove() for h in hooks]


def project(generator, config, targets: torch.Tensor, device, steps: int = DEFAULT_STEPS, seed: int = 0, labels: list[int] | None = None,
            discriminator=None, feature_weight: float = DEFAULT_FEATURES, batch: int = 64, advance=None) -> list[Found]:  # fmt: skip
    """The latent of each uint8 target (N, C, H, W), already of the run's size and channels.

    `labels`: conditional runs, a class per image, or None to search every class.
    """
    from gancli.models import get_architecture

    arch = get_architecture(config.arch)
    features, unhook = discriminator_features(discriminator) if feature_weight > 0 and discriminator is not None else (None, lambda: None)
    found: list[Found] = []
    try:
        for start in range(0, len(targets), batch):
            part = targets[start : start + batch].to(device).float() / 127.5 - 1
            part_labels = None if labels is None else labels[start : start + batch]
            if arch.conditional and part_labels is None:
                part_labels = _best_classes(generator, config, part, device, max(1, steps // 4), seed + start, features, feature_weight)
            found += _optimise(generator, config, part, device, steps, seed + start, part_labels, features, feature_weight, advance)
    finally:
        unhook()
    return found


def _best_classes(generator, config, part, device, steps, seed, features, feature_weight) -> list[int]:
    """For each image, the class whose short projection reproduces it best."""
    k = config.num_classes
    repeated = part.repeat_interleave(k, 0)
    tries = list(range(k)) * len(part)
    results = _optimise(generator, config, repeated, device, steps, seed, tries, features, feature_weight, None)
    losses = torch.tensor([r.losses["pixel"] for r in results]).view(len(part), k)
    return losses.argmin(1).tolist()


def _optimise(generator, config, part, device, steps, seed, labels, features, feature_weight, advance) -> list[Found]:
    space = "w+" if hasattr(generator, "forward_w") else "z"
    n = len(part)
    condition = () if labels is None else (torch.tensor(labels, device=device),)
    with torch.no_grad():
        start = _start(generator, config, part, device, seed, condition, space)
        target_features = [f.detach() for f in features(part, *condition)] if features else None
    latent = (start[:, :1] if space == "w+" and STYLES_SHARED else start).clone().requires_grad_(True)
    rate = LR if space == "z" else LR * _w_scale(generator, config.latent_dim)
    optimiser = torch.optim.Adam([latent], lr=rate)
    for p in generator.parameters():
        p.requires_grad_(False)
    for step in range(steps):
        for group in optimiser.param_groups:  # cosine decay: large moves first, fine ones last
            group["lr"] = rate * 0.5 * (1 + math.cos(math.pi * step / steps))
        image = _draw(generator, latent, condition, space)
        pixel = (image - part).pow(2).flatten(1).mean(1)
        loss = pixel
        if target_features:
            feature = sum((a - b).pow(2).flatten(1).mean(1) for a, b in zip(features(image, *condition), target_features)) / len(target_features)
            loss = loss + feature_weight * feature
        if space == "z":
            loss = loss + PRIOR * (latent.norm(dim=1) / math.sqrt(latent.shape[1]) - 1).pow(2)
        optimiser.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimiser.step()
        if advance is not None:
            advance(n / steps)
    with torch.no_grad():
        image = _draw(generator, latent, condition, space)
        pixel = (image - part).pow(2).flatten(1).mean(1)
    values = (latent.expand(-1, generator.num_styles, -1) if space == "w+" else latent).detach().cpu().contiguous()
    return [Found(values[i].clone(), space, None if labels is None else int(labels[i]), {"pixel": float(pixel[i]), "steps": steps}) for i in range(n)]


def _start(generator, config, part, device, seed, condition, space) -> torch.Tensor:
    if space == "w+":
        return generator.w_average.detach().view(1, 1, -1).repeat(len(part), generator.num_styles, 1).to(device)
    z = torch.randn(STARTS, config.latent_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    best = torch.empty(len(part), config.latent_dim, device=device)
    groups = condition[0].unique().tolist() if condition else [None]
    for c in groups:  # each image's nearest random sample, drawn with its own class (one batch per class)
        rows = (condition[0] == c).nonzero().flatten() if condition else torch.arange(len(part), device=device)
        drawn = generator(z, *((torch.full((STARTS,), c, device=device),) if condition else ())).flatten(1)
        best[rows] = z[torch.cdist(part[rows].flatten(1), drawn).argmin(1)]
    return best


def _w_scale(generator, latent_dim: int) -> float:
    """The spread of w around its average: w+ steps are scaled to it, as StyleGAN2-ADA's projector does."""
    with torch.no_grad():
        device = generator.w_average.device
        w = generator.map(torch.randn(1000, latent_dim, generator=torch.Generator().manual_seed(0)).to(device))
        return float((w - generator.w_average).pow(2).sum(1).mean().sqrt()) / math.sqrt(w.shape[1])


def _draw(generator, latent, condition, space):
    if space == "z":
        return generator(latent, *condition)
    return generator.forward_w(latent.expand(-1, generator.num_styles, -1))  # a shared w is stored as w+


@torch.no_grad()
def render_latents(generator, values: torch.Tensor, space: str, device, labels: list[int] | None = None) -> torch.Tensor:
    """Each latent's image as uint8 (N, C, H, W), one at a time (as `sample --latent` draws them)."""
    from gancli.use.sampling import render

    if space == "z":
        return render(generator, values, device, labels=None if labels is None else torch.tensor(labels))
    from gancli.data.images import to_uint8

    return torch.cat([to_uint8(generator.forward_w(values[i : i + 1].to(device))) for i in range(len(values))])


def psnr(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """PSNR in dB of uint8 images a against b, per image (identical: 100 dB)."""
    from gancli.evaluation.metrics import psnr_each

    return psnr_each(a.float() / 127.5 - 1, b.float() / 127.5 - 1).tolist()


def check_steps(steps: int) -> None:
    if not 1 <= steps <= 100_000:
        raise UsageError(f"steps={steps} is out of range; use 1 to 100,000 (default {DEFAULT_STEPS}).")
