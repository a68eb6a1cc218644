"""DCGAN (Radford et al., 2015) at 28, 32, 64 and 128 pixels, plus the Keras upsample+conv generator and
residual stages (`--residual`: SN-GAN's blocks, Miyato et al., 2018) on the same feature-map sizes and widths."""

from __future__ import annotations

import math

import torch
from torch import nn


def feature_sizes(image_size: int) -> list[int]:
    """Feature-map sides from the 4x4 projection up to the image: 28 -> [4, 7, 14, 28], 64 -> [4, 8, 16, 32, 64]."""
    sizes = [image_size]
    while sizes[-1] > 4:
        sizes.append(-(-sizes[-1] // 2))
    return sizes[::-1]


def stride2_kernel(small: int, large: int) -> int:
    """Kernel of a stride-2, padding-1 (transposed) convolution between sides small and large: 4 doubles, 3 gives 2n-1 (4 <-> 7)."""
    return 4 if large == 2 * small else 3


def downsampling(config) -> list[tuple[int, int, int, int]]:
    """D's stride-2 stages from the image to 4x4: (channels in, channels out, kernel, side out).

    e.g. 64x64, width 64: C @ 64 -> 64 @ 32 -> 128 @ 16 -> 256 @ 8 -> 512 @ 4.
    """
    sizes = feature_sizes(config.image_size)[::-1]  # e.g. [28, 14, 7, 4]
    widths = [config.channels] + [config.discriminator_width * 2**i for i in range(len(sizes) - 1)]
    return [(widths[i], widths[i + 1], stride2_kernel(sizes[i + 1], sizes[i]), sizes[i + 1]) for i in range(len(sizes) - 1)]


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) for convolutions and linear layers, N(1, 0.02) for BatchNorm scales (the paper's init)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class UpBlock(nn.Module):
    """SN-GAN's generator block: BN, ReLU, nearest upsample to `side`, 3x3 conv, BN, ReLU, 3x3 conv; plus upsample, 1x1 conv."""

    def __init__(self, w_in: int, w_out: int, side: int):
        super().__init__()
        up = nn.Upsample(size=(side, side), mode="nearest")  # by size: 4 -> 7 at 28 pixels
        self.main = nn.Sequential(nn.BatchNorm2d(w_in), nn.ReLU(), up, nn.Conv2d(w_in, w_out, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(w_out), nn.ReLU(), nn.Conv2d(w_out, w_out, 3, 1, 1))  # fmt: skip
        self.shortcut = nn.Sequential(up, nn.Conv2d(w_in, w_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.shortcut(x)


class DownBlock(nn.Module):
    """SN-GAN's discriminator block, without normalisation: [ReLU,] 3x3 conv, ReLU, 3x3 conv, average pool to `side`;
    plus 1x1 conv and pool. The first block sees the image itself, so it starts with the convolution (no ReLU)."""

    def __init__(self, w_in: int, w_out: int, side: int, first: bool):
        super().__init__()
        pool = nn.AdaptiveAvgPool2d(side)  # 2x2 means, and 7 -> 4 at 28 pixels
        self.main = nn.Sequential(*([] if first else [nn.LeakyReLU(0.2)]), nn.Conv2d(w_in, w_out, 3, 1, 1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(w_out, w_out, 3, 1, 1), pool)  # fmt: skip
        self.shortcut = nn.Sequential(nn.Conv2d(w_in, w_out, 1), pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.shortcut(x)


class Generator(nn.Module):
    """z (B, latent_dim) -> image (B, C, S, S) in [-1, 1].

    The projection of z to a 4x4 map (the first transposed convolution acts on a 1x1 input, so
    it is the paper's dense projection), then stride-2 transposed convolutions that halve the
    channels while doubling the side (4 -> 7 at 28 pixels). With upsample="nearest", the Keras
    DCGAN variant: dense to a 7x7 (28, i.e. 7x7x128) or 4x4 map, then nearest-neighbour
    upsampling and 5x5 convolutions, which avoids checkerboard artefacts.
    """

    def __init__(self, config):
        super().__init__()
        if config.residual:
            layers = self._residual(config)
        else:
            layers = self._nearest(config) if config.upsample == "nearest" else self._transposed(config)
        self.net = nn.Sequential(*layers, nn.Tanh())
        if not config.residual:  # residual stages keep PyTorch's default init: N(0, 0.02) starves the skip-free path
            self.apply(init_weights)

    @property
    def stem_size(self) -> int:
        """How many leading layers of `net` form the projection of z (layer, BatchNorm, ReLU[, reshape])."""
        return 4 if isinstance(self.net[0], nn.Linear) else 3

    def _residual(self, config) -> list[nn.Module]:
        sizes = feature_sizes(config.image_size)
        # e.g. 28x28, width 32: 128 @ 4x4 -> 64 @ 7 -> 32 @ 14 -> 32 @ 28 -> C @ 28 (DCGAN's widths, one more block at full size)
        widths = [config.generator_width * 2 ** max(len(sizes) - 2 - i, 0) for i in range(len(sizes))]
        self.latent_shape = (config.latent_dim,)
        layers: list[nn.Module] = [nn.Linear(config.latent_dim, widths[0] * sizes[0] ** 2), nn.Unflatten(1, (widths[0], sizes[0], sizes[0]))]
        layers += [UpBlock(widths[i], widths[i + 1], sizes[i + 1]) for i in range(len(sizes) - 1)]
        return layers + [nn.BatchNorm2d(widths[-1]), nn.ReLU(), nn.Conv2d(widths[-1], config.channels, 3, 1, 1)]

    def _transposed(self, config) -> list[nn.Module]:
        sizes = feature_sizes(config.image_size)
        # e.g. 64x64, width 64: 512 @ 4x4 -> 256 @ 8 -> 128 @ 16 -> 64 @ 32 -> C @ 64
        widths = [config.generator_width * 2 ** (len(sizes) - 2 - i) for i in range(len(sizes) - 1)]
        self.latent_shape = (config.latent_dim, 1, 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(config.latent_dim, widths[0], 4, 1, 0, bias=False),  # (B, w0, 4, 4)
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for i, (w_in, w_out) in enumerate(zip(widths, widths[1:])):
            layers += [
                nn.ConvTranspose2d(w_in, w_out, stride2_kernel(sizes[i], sizes[i + 1]), 2, 1, bias=False),
                nn.BatchNorm2d(w_out),
                nn.ReLU(True),
            ]
        layers.append(nn.ConvTranspose2d(widths[-1], config.channels, stride2_kernel(sizes[-2], sizes[-1]), 2, 1, bias=False))
        return layers  # (B, C, S, S)

    def _nearest(self, config) -> list[nn.Module]:
        base = 7 if config.image_size % 7 == 0 else 4  # 28 = 7 * 2^2; 32, 64, 128 = 4 * 2^k
        doublings = int(math.log2(config.image_size // base))
        widths = [config.generator_width * 2 ** (doublings - 1 - i) for i in range(doublings)]
        self.latent_shape = (config.latent_dim,)
        layers: list[nn.Module] = [
            nn.Linear(config.latent_dim, widths[0] * base * base, bias=False),
            nn.BatchNorm1d(widths[0] * base * base),
            nn.ReLU(True),
            nn.Unflatten(1, (widths[0], base, base)),  # (B, w0, base, base)
        ]
        outputs = widths[1:] + [config.channels]
        for i, (w_in, w_out) in enumerate(zip(widths, outputs)):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w_in, w_out, 5, 1, 2, bias=False)]
            if i < len(outputs) - 1:  # the last convolution feeds tanh directly
                layers += [nn.BatchNorm2d(w_out), nn.ReLU(True)]
        return layers  # (B, C, S, S)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(-1, *self.latent_shape))


class Discriminator(nn.Module):
    """image (B, C, S, S) -> one logit per image (B,): stride-2 convolutions, BatchNorm, LeakyReLU(0.2).

    Subclasses (sagan) change the layers of a stage and the head; the stages stay DCGAN's.
    """

    def __init__(self, config):
        super().__init__()
        self.residual = config.residual  # False for sagan, which refuses --residual
        stages = downsampling(config)
        self.first_kernel = stages[0][2]
        self.feature_width = stages[-1][1]
        self.features = nn.Sequential(*(layer for i, stage in enumerate(stages) for layer in self.stage(i, *stage, config)))  # (B, w, 4, 4)
        self.head = self.make_head(self.feature_width)  # (B, 1, 1, 1)
        self.initialise()

    def stage(self, index: int, w_in: int, w_out: int, kernel: int, side: int, config) -> list[nn.Module]:
        if self.residual:
            return [DownBlock(w_in, w_out, side, first=index == 0)] + ([nn.LeakyReLU(0.2)] if index == len(downsampling(config)) - 1 else [])
        batch_norm = [nn.BatchNorm2d(w_out)] if index else []  # none on the image itself (the paper)
        return [nn.Conv2d(w_in, w_out, kernel, 2, 1, bias=False), *batch_norm, nn.LeakyReLU(0.2, True)]

    def make_head(self, width: int) -> nn.Module:
        return nn.Conv2d(width, 1, 4, 1, 0, bias=False)

    def initialise(self) -> None:
        if not self.residual:
            self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).view(-1)
