"""Conditional GANs: the class label steers both networks (Mirza & Osindero, 2014).

`cgan` is the fully-connected GAN with a label embedding concatenated to z and to the
flattened image. `cdcgan` is DCGAN with the embedding concatenated to z and a projection
discriminator (Miyato & Koyama, 2018): logit = head(h) + <embed(y), sum-pooled h>.

Generators take labels as class indices, or as embeddings through `from_embedding()` so that
`gancli interpolate --labels` can walk between classes.
"""

from __future__ import annotations

import torch
from torch import nn

from gancli.models import dcgan, mlp

EMBEDDING_DIM = 50  # a label embedding as wide as half of z: plenty for tens of classes


class ConditionalGenerator(nn.Module):
    """z (B, latent_dim) and labels y (B,) -> images; the label embedding is appended to z."""

    conditional = True

    def __init__(self, config, body_module):
        super().__init__()
        self.embedding = nn.Embedding(config.num_classes, EMBEDDING_DIM)
        self.body = body_module.Generator(config.with_changes(latent_dim=config.latent_dim + EMBEDDING_DIM))

    def embed(self, y: torch.Tensor) -> torch.Tensor:
        return self.embedding(y)

    def from_embedding(self, z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([z, e], dim=1))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.from_embedding(z, self.embed(y))


class CGANGenerator(ConditionalGenerator):
    def __init__(self, config):
        super().__init__(config, mlp)


class CGANDiscriminator(nn.Module):
    """[flattened image, label embedding] -> 512 -> 256 -> one logit (B,)."""

    def __init__(self, config):
        super().__init__()
        self.embedding = nn.Embedding(config.num_classes, EMBEDDING_DIM)
        self.body = mlp.Discriminator(config, extra_inputs=EMBEDDING_DIM)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([x.flatten(1), self.embedding(y)], dim=1))


class CDCGANGenerator(ConditionalGenerator):
    def __init__(self, config):
        super().__init__(config, dcgan)


class CDCGANDiscriminator(nn.Module):
    """DCGAN's convolutional features h, then head(h) plus the projection of h on the label's embedding."""

    def __init__(self, config):
        super().__init__()
        self.body = dcgan.Discriminator(config)
        self.embedding = nn.Embedding(config.num_classes, self.body.feature_width)
        nn.init.normal_(self.embedding.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.body.features(x)  # (B, W, 4, 4)
        projection = (self.embedding(y) * h.sum(dim=(2, 3))).sum(dim=1)
        return self.body.head(h).view(-1) + projection
