"""A compact style-based generator (Karras et al., 2019; StyleGAN2's modulated convolutions, 2020).

z goes through a mapping network to w; every convolution of the synthesis network is modulated
by its own affine "style" of w and demodulated (weights rescaled so each output channel has
unit variance), starting from a learned 4x4 constant. Per-pixel noise inputs, scaled per
channel, give the stochastic detail. Training mixes the styles of two z's at a random layer
(style mixing regularisation), so coarse layers (pose, shape) and fine ones (texture) learn to
work apart: `gancli interpolate --mix SEED` shows it. `truncation` pulls w towards the average
w (kept as a moving average while training): sharper, less varied samples.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gancli.models.progan import EqualLinear, minibatch_stddev, pixel_norm, resolutions, widths
from gancli.models.stochastic import Stochastic

STYLE_DIM = 128  # CPU-sized (the paper's 512)
MAPPING_LAYERS = 4  # (the paper's 8)
MIXING_PROBABILITY = 0.9
W_AVERAGE_DECAY = 0.995


class ModulatedConv2d(nn.Module):
    """A convolution whose input channels are scaled by a style (B, C_in), with demodulated weights."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, demodulate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.scale = 1 / math.sqrt(in_channels * kernel * kernel)  # equalised learning rate
        self.affine = EqualLinear(STYLE_DIM, in_channels, gain=1.0)
        nn.init.ones_(self.affine.bias)  # styles start at 1: the plain convolution
        self.demodulate, self.padding = demodulate, kernel // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        style = self.affine(w)  # (B, C_in)
        weight = self.weight * self.scale
        # StyleGAN2's unfused form: scaling the input by the style and the output by the demodulation
        # coefficients equals a convolution with per-image weights, and runs as one ordinary convolution
        out = F.conv2d(x * style.view(b, c, 1, 1), weight, padding=self.padding)
        if self.demodulate:  # 1 / |w'| per image and output channel, w' = weight * style
            norms = (weight.square().sum(dim=[2, 3]).unsqueeze(0) * style.square().view(b, 1, c)).sum(2)  # (B, C_out)
            out = out * torch.rsqrt(norms + 1e-8).view(b, -1, 1, 1)
        return out


class StyledLayer(Stochastic):
    """Modulated 3x3 convolution, then noise (scaled per channel), bias and LeakyReLU.

    Training draws fresh noise every call; in eval mode the layer uses a fixed noise map kept in
    the checkpoint, so an image depends on its z alone (same seed, same pixels).
    """

    def __init__(self, in_channels: int, out_channels: int, size: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3)
        self.noise_strength = nn.Parameter(torch.zeros(out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("fixed_noise", torch.randn(1, 1, size, size))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = self.conv(x, w)
        noise = torch.randn(x.shape[0], 1, *x.shape[-2:], device=x.device, generator=self.random).to(x.dtype) if self.training else self.fixed_noise
        x = x + self.noise_strength.view(1, -1, 1, 1) * noise
        return F.leaky_relu(x + self.bias.view(1, -1, 1, 1), 0.2) * math.sqrt(2)


class Generator(Stochastic):
    """z (B, latent_dim) -> image (B, C, S, S); forward_w(ws) renders given per-layer styles."""

    def __init__(self, config):
        super().__init__()
        sizes = resolutions(config.image_size)
        w = widths(config)
        mapping: list[nn.Module] = []
        for i in range(MAPPING_LAYERS):
            mapping += [EqualLinear(config.latent_dim if i == 0 else STYLE_DIM, STYLE_DIM, lr_mul=0.01), nn.LeakyReLU(0.2)]
        self.mapping = nn.Sequential(*mapping)
        self.constant = nn.Parameter(torch.randn(1, w[0], 4, 4))
        self.layers = nn.ModuleList([StyledLayer(w[0], w[0], 4)])
        for i in range(1, len(sizes)):
            self.layers.extend([StyledLayer(w[i - 1], w[i], sizes[i]), StyledLayer(w[i], w[i], sizes[i])])
        self.to_rgb = nn.ModuleList(ModulatedConv2d(width, config.channels, 1, demodulate=False) for width in w)
        self.num_styles = len(self.layers)  # one w per styled layer; to_rgb uses its level's last
        self.register_buffer("w_average", torch.zeros(STYLE_DIM))
        self.mixing_probability = MIXING_PROBABILITY
        self.truncation = 1.0  # set by `gancli sample --truncation`; 1 = off

    def map(self, z: torch.Tensor) -> torch.Tensor:
        return self.mapping(pixel_norm(z.view(z.shape[0], -1, 1, 1)).flatten(1))

    def styles(self, z: torch.Tensor) -> torch.Tensor:
        """Per-layer styles (B, num_styles, STYLE_DIM): mixed between two z's while training, truncated when asked."""
        w = self.map(z)
        if self.training:
            with torch.no_grad():
                self.w_average.lerp_(w.detach().mean(0), 1 - W_AVERAGE_DECAY)
        ws = w.unsqueeze(1).repeat(1, self.num_styles, 1)
        if self.training and self.mixing_probability > 0:
            # one draw decides both whether and where to mix (a single host sync per step)
            u = float(torch.rand((), device=z.device, generator=self.random))
            if u < self.mixing_probability:
                other = self.map(torch.randn(z.shape, device=z.device, generator=self.random).to(z.dtype))
                crossover = 1 + int(u / self.mixing_probability * (self.num_styles - 1))
                ws[:, crossover:] = other.unsqueeze(1)
        if self.truncation != 1.0:
            ws = self.w_average.lerp(ws, self.truncation)
        return ws

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.forward_w(self.styles(z))

    def forward_w(self, ws: torch.Tensor) -> torch.Tensor:
        x = self.constant.expand(ws.shape[0], -1, -1, -1)
        x = self.layers[0](x, ws[:, 0])
        image = self.to_rgb[0](x, ws[:, 0])
        for level in range(1, len(self.to_rgb)):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            for j in (2 * level - 1, 2 * level):
                x = self.layers[j](x, ws[:, j])
            # StyleGAN2's skip architecture: each level adds its own RGB to the upsampled sum
            image = F.interpolate(image, scale_factor=2, mode="bilinear", align_corners=False) + self.to_rgb[level](x, ws[:, 2 * level])
        return torch.tanh(image)

    def mixed(self, coarse_z: torch.Tensor, fine_z: torch.Tensor, crossover: int | None = None) -> torch.Tensor:
        """Images with the styles of the first `crossover` layers (default: up to 8x8) from coarse_z, the rest from fine_z."""
        crossover = 3 if crossover is None else crossover  # layers 0-2: 4x4 and the 8x8 block's first convolution
        ws = self.styles(coarse_z)
        ws[:, crossover:] = self.styles(fine_z)[:, crossover:]
        return self.forward_w(ws)


class Discriminator(nn.Module):
    """image -> one logit: progan's discriminator at full resolution (from RGB, conv blocks, minibatch stddev)."""

    def __init__(self, config):
        super().__init__()
        from gancli.models.progan import EqualConv2d

        w = widths(config)
        self.from_rgb = EqualConv2d(config.channels, w[-1], 1)
        self.blocks = nn.ModuleList(
            nn.Sequential(EqualConv2d(w[i], w[i], 3, padding=1), nn.LeakyReLU(0.2), EqualConv2d(w[i], w[i - 1], 3, padding=1), nn.LeakyReLU(0.2))
            for i in range(len(w) - 1, 0, -1)
        )
        self.final_conv = EqualConv2d(w[0] + 1, w[0], 3, padding=1)
        self.final_dense = EqualLinear(w[0] * 16, w[0])
        self.head = EqualLinear(w[0], 1, gain=1.0)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.from_rgb(image), 0.2)
        for block in self.blocks:
            x = F.avg_pool2d(block(x), 2)
        x = F.leaky_relu(self.final_conv(minibatch_stddev(x)), 0.2)
        x = F.leaky_relu(self.final_dense(x.flatten(1)), 0.2)
        return self.head(x).view(-1)
