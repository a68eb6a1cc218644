"""Progressive GAN (Karras et al., 2018): G and D grow from 4x4 to the image size while training.

Each new resolution fades in: for alpha from 0 to 1, the output is (1 - alpha) x the previous
resolution's image, upsampled, + alpha x the new block's image (D mirrors this on its input).
Equalised learning rate (weights drawn from N(0, 1) and scaled by He's constant at run time),
pixel-wise feature normalisation in G and the minibatch standard deviation in D keep the
two networks balanced without BatchNorm.

Where training is in the schedule is a function of the step alone (`growth(step)`), and the
step is a buffer of G: a checkpoint knows its resolution and alpha, so resuming mid-growth and
sampling a half-grown generator need nothing else.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gancli.errors import UsageError

def resolutions(image_size: int) -> list[int]:
    sizes = [4]
    while sizes[-1] < image_size:
        sizes.append(sizes[-1] * 2)
    if sizes[-1] != image_size:
        raise UsageError(f"--image-size {image_size} is not 4 x a power of two; progan grows to 32, 64 or 128.")
    return sizes


def spread_growth(config, total_steps: int, notices: list[str]):
    """With no --phase-steps: fit the whole schedule (a stable 4x4 phase, then fade-in + stable per doubling) into the run."""
    if config.phase_steps:
        return config
    levels = len(resolutions(config.image_size))
    phase = max(1, math.ceil(total_steps / (2 * levels - 1)))
    notices.append(f"progan grows 4x4 -> {config.image_size}x{config.image_size} in {2 * levels - 1} phases of {phase} steps (--phase-steps).")
    return config.with_changes(phase_steps=phase)


def growth(step: int, phase_steps: int, levels: int) -> tuple[int, float]:
    """(level, alpha) at `step`: 4x4 for a phase, then per new level a fade-in phase and a stable phase.

    phase_steps 0 (a model built outside training, before train() spreads the schedule) means fully grown.
    """
    if phase_steps <= 0:
        return levels - 1, 1.0
    if step < phase_steps:
        return 0, 1.0
    level, into = divmod(step - phase_steps, 2 * phase_steps)
    level += 1
    if level >= levels:
        return levels - 1, 1.0
    return level, min(1.0, into / phase_steps)


def widths(config) -> list[int]:
    """Channels per resolution: generator_width up to 16x16, then halving with each doubling (at least a quarter).

    The paper's 512 channels up to 32x32 are sized for GPUs; at --generator-width 64 this gives 64 at 4-16 px,
    32 at 32 px and 16 at 64 and 128 px: about 1.3 GFLOP per image per training step at 32 px, CPU-sized.
    """
    gw = config.generator_width
    return [min(gw, max(gw // 4, gw * 16 // size)) for size in resolutions(config.image_size)]


class EqualConv2d(nn.Conv2d):
    """A convolution whose weights are N(0, 1) and scaled by sqrt(2 / fan_in) at every call (equalised learning rate)."""

    def __init__(self, *args, gain: float = math.sqrt(2), **kwargs):
        super().__init__(*args, **kwargs)
        nn.init.normal_(self.weight)
        nn.init.zeros_(self.bias)
        self.scale = gain / math.sqrt(self.weight[0].numel())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.scale, self.bias)


class EqualLinear(nn.Linear):
    """A linear layer with equalised learning rate; lr_mul < 1 slows it (StyleGAN's mapping network uses 0.01)."""

    def __init__(self, *args, gain: float = math.sqrt(2), lr_mul: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        nn.init.normal_(self.weight, std=1 / lr_mul)
        nn.init.zeros_(self.bias)
        self.scale, self.lr_mul = gain / math.sqrt(self.in_features) * lr_mul, lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    """Each pixel's feature vector scaled to unit average square (G's normalisation)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


def minibatch_stddev(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    """Append the average standard deviation over a group of images as one more feature map (D sees variety)."""
    b, c, h, w = x.shape
    g = min(group, b)
    while b % g:
        g -= 1
    std = x.view(g, -1, c, h, w).float().var(dim=0, unbiased=False).add(1e-8).sqrt().mean(dim=[1, 2, 3])  # (b / g,)
    return torch.cat([x, std.to(x.dtype).repeat(g).view(b, 1, 1, 1).expand(b, 1, h, w)], dim=1)


class Progressive(nn.Module):
    """What G and D share: the training step (a buffer), the schedule and where it puts them."""

    def _init_growth(self, config) -> None:
        self.sizes = resolutions(config.image_size)
        self.phase_steps = config.phase_steps
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def growth(self) -> tuple[int, float]:
        return growth(int(self.step), self.phase_steps, len(self.sizes))

    def advance(self) -> None:
        """One training step done: move along the schedule."""
        self.step += 1

    @property
    def resolution(self) -> int:
        return self.sizes[self.growth()[0]]


class Generator(Progressive):
    """z -> image (B, C, S, S) at the current resolution, upsampled to S for a constant output shape."""

    def __init__(self, config):
        super().__init__()
        self._init_growth(config)
        w = widths(config)
        self.image_size = config.image_size
        self.project = EqualLinear(config.latent_dim, w[0] * 16, gain=math.sqrt(2) / 4)  # z -> 4x4 (the paper's 4x4 conv on a 1x1 input)
        self.stem = EqualConv2d(w[0], w[0], 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualConv2d(w[i - 1], w[i], 3, padding=1), EqualConv2d(w[i], w[i], 3, padding=1)]) for i in range(1, len(w))
        )
        self.to_rgb = nn.ModuleList(EqualConv2d(width, config.channels, 1, gain=1.0) for width in w)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        level, alpha = self.growth()
        x = pixel_norm(z)
        x = pixel_norm(F.leaky_relu(self.project(x).view(z.shape[0], -1, 4, 4), 0.2))
        x = pixel_norm(F.leaky_relu(self.stem(x), 0.2))
        previous = None
        for i in range(1, level + 1):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            if i == level and alpha < 1:
                previous = self.to_rgb[i - 1](x)  # the old resolution's image, upsampled (1x1 conv and nearest commute)
            for conv in self.blocks[i - 1]:
                x = pixel_norm(F.leaky_relu(conv(x), 0.2))
        image = self.to_rgb[level](x)
        if previous is not None:
            image = torch.lerp(previous, image, alpha)
        if image.shape[-1] != self.image_size:
            image = F.interpolate(image, size=self.image_size, mode="nearest")
        return torch.tanh(image)


class Discriminator(Progressive):
    """image (B, C, S, S) -> one logit, reading it at the current resolution."""

    def __init__(self, config):
        super().__init__()
        self._init_growth(config)
        w = widths(config)
        self.from_rgb = nn.ModuleList(EqualConv2d(config.channels, width, 1) for width in w)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualConv2d(w[i], w[i], 3, padding=1), EqualConv2d(w[i], w[i - 1], 3, padding=1)]) for i in range(1, len(w))
        )
        self.final_conv = EqualConv2d(w[0] + 1, w[0], 3, padding=1)
        self.final_dense = EqualLinear(w[0] * 16, w[0])
        self.head = EqualLinear(w[0], 1, gain=1.0)

    def fade_real(self, real: torch.Tensor) -> torch.Tensor:
        """Real images as G can draw them now: at the current resolution, blended with the previous one while fading in."""
        level, alpha = self.growth()
        size = self.sizes[level]
        x = F.adaptive_avg_pool2d(real, size) if real.shape[-1] != size else real
        if alpha < 1:
            x = torch.lerp(F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest"), x, alpha)
        return F.interpolate(x, size=real.shape[-1], mode="nearest") if size != real.shape[-1] else x

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        level, alpha = self.growth()
        size = self.sizes[level]
        if image.shape[-1] != size:
            image = F.adaptive_avg_pool2d(image, size)
        x = F.leaky_relu(self.from_rgb[level](image), 0.2)
        for i in range(level, 0, -1):
            for conv in self.blocks[i - 1]:
                x = F.leaky_relu(conv(x), 0.2)
            x = F.avg_pool2d(x, 2)
            if i == level and alpha < 1:  # fade: the new block's features with the old input layer's
                old = F.leaky_relu(self.from_rgb[i - 1](F.avg_pool2d(image, 2)), 0.2)
                x = torch.lerp(old, x, alpha)
        x = F.leaky_relu(self.final_conv(minibatch_stddev(x)), 0.2)
        x = F.leaky_relu(self.final_dense(x.flatten(1)), 0.2)
        return self.head(x).view(-1)
