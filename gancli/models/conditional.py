"""Conditional GANs: the class label steers both networks (Mirza & Osindero, 2014).

`cgan`: the fully-connected GAN with a label embedding appended to z and to the flattened
image. `cdcgan`: DCGAN in which z and the label embedding each get their own projection
(with its own BatchNorm) before the two are concatenated, and the discriminator's first
convolution is split likewise between the image and one-hot label maps, and its logit gains the
projection term <embedding(y), pooled features> (Miyato & Koyama, 2018). Giving each input
its own first layer keeps either from drowning the other: with a single shared projection,
the generator learned one image per class and ignored z.

Generators take labels as class indices, or as embeddings through `from_embedding()` so that
`gancli interpolate --labels` can walk between classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gancli.errors import UsageError
from gancli.models import dcgan, mlp


class CGANGenerator(nn.Module):
    """[z, label embedding] -> the `gan` generator's 256-512-1024 MLP -> images."""

    conditional = True
    label_layers = ("embedding",)  # what class k means: started afresh when --init comes from other classes

    def __init__(self, config):
        super().__init__()
        self.embedding = nn.Embedding(config.num_classes, config.num_classes)  # as wide as the class count (classic cGAN)
        self.body = mlp.Generator(config.with_changes(latent_dim=config.latent_dim + config.num_classes))

    def embed(self, y: torch.Tensor) -> torch.Tensor:
        return self.embedding(y)

    def from_embedding(self, z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([z, e], dim=1))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.from_embedding(z, self.embed(y))


class CGANDiscriminator(nn.Module):
    """[flattened image, label embedding] -> 512 -> 256 -> one logit (B,)."""

    label_layers = ("embedding",)

    def __init__(self, config):
        super().__init__()
        self.embedding = nn.Embedding(config.num_classes, config.num_classes)
        self.body = mlp.Discriminator(config, extra_inputs=config.num_classes)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([x.flatten(1), self.embedding(y)], dim=1))


LABEL_EMBEDDING_DIM = 50


class CDCGANGenerator(nn.Module):
    """z and the label each projected to half of DCGAN's first feature map, then DCGAN's upsampling stages."""

    conditional = True
    label_layers = ("embedding",)

    def __init__(self, config):
        super().__init__()
        self.embedding = nn.Embedding(config.num_classes, LABEL_EMBEDDING_DIM)
        template = dcgan.Generator(config)  # (B, w0, 4, 4) after its stem, w0 = stem output channels
        stem = template.stem_size
        half = _halve(config, template)
        self.z_stem = dcgan.Generator(half).net[:stem]  # z -> (B, w0/2, 4, 4)
        self.y_stem = dcgan.Generator(half.with_changes(latent_dim=LABEL_EMBEDDING_DIM)).net[:stem]  # label -> (B, w0/2, 4, 4)
        self.trunk = template.net[stem:]
        self.z_shape, self.e_shape = template.latent_shape, (LABEL_EMBEDDING_DIM,) + template.latent_shape[1:]

    def embed(self, y: torch.Tensor) -> torch.Tensor:
        return self.embedding(y)

    def from_embedding(self, z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.z_stem(z.view(-1, *self.z_shape)), self.y_stem(e.view(-1, *self.e_shape))], dim=1)
        return self.trunk(h)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.from_embedding(z, self.embed(y))


def _halve(config, template):
    """A config whose generator stem outputs half the channels of `template`'s stem (widths are generator_width * 2^k)."""
    if config.generator_width % 2:
        raise UsageError(f"--generator-width {config.generator_width} must be even for cdcgan (z and the label each get half).")
    return config.with_changes(generator_width=config.generator_width // 2)


class CDCGANDiscriminator(nn.Module):
    """The image and one-hot label maps each through half of DCGAN's first convolution, then the rest of DCGAN's D."""

    label_layers = ("y_stem", "projection")  # they read one-hot labels: one filter and one embedding row per class

    def __init__(self, config):
        super().__init__()
        self.num_classes = config.num_classes
        body = dcgan.Discriminator(config)
        first = body.features[0]
        half = first.out_channels // 2
        self.x_stem = nn.Conv2d(config.channels, first.out_channels - half, body.first_kernel, 2, 1, bias=False)
        self.y_stem = nn.Conv2d(config.num_classes, half, body.first_kernel, 2, 1, bias=False)
        self.rest = body.features[1:]  # LeakyReLU, then the stride-2 stages
        self.head = body.head
        self.apply(dcgan.init_weights)
        # The projection discriminator's class term: the label maps alone reach D's first layer only,
        # and 10 epochs of MNIST drew the asked-for digit 94% of the time. Zero at first: D starts as before.
        self.projection = nn.Embedding(config.num_classes, body.feature_width) if config.label_projection else None
        if self.projection is not None:
            nn.init.zeros_(self.projection.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        maps = F.one_hot(y, self.num_classes).to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])
        h = self.rest(torch.cat([self.x_stem(x), self.y_stem(maps)], dim=1))  # (B, w, 4, 4)
        logits = self.head(h).view(-1)
        if self.projection is None:
            return logits
        return logits + (self.projection(y) * h.mean((2, 3))).sum(1)
