"""What the training recipe changes in a discriminator: its normalisation layers.

Spectral normalisation (Miyato et al., 2018) bounds every layer's Lipschitz constant; SN
discriminators use no BatchNorm. BatchNorm's shift stays, as a learned per-channel bias: DCGAN's
convolutions have none of their own (BatchNorm follows them), and without any bias the network
is positively homogeneous, D(a x) = a D(x), which made DCGAN + SN collapse (docs/recipes.md,
"Why hinge + SN collapsed"). The gradient penalty of WGAN-GP is defined per image, which BatchNorm breaks by
mixing the images of a batch; there a per-image layer norm replaces it. `--discriminator-norm none` makes the
same change as spectral norm (BatchNorm to a bias) without the normalisation: for R1, also defined per image.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm


class ChannelBias(nn.Module):
    """x + b, one learned value per channel (dimension 1): what is left of BatchNorm under spectral norm."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias.view(1, -1, *([1] * (x.ndim - 2)))


def adapt_discriminator(discriminator: nn.Module, config) -> nn.Module:
    per_image = config.loss == "wgan-gp"
    if per_image or config.spectral_norm or config.discriminator_norm == "none":
        _replace_batch_norms(discriminator, per_image, config.spectral_norm_bias)
    if config.spectral_norm:
        for module in list(discriminator.modules()):
            if isinstance(module, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)) and not parametrize.is_parametrized(module):
                spectral_norm(module)  # (sagan's layers have it already)
    return discriminator


def _replace_batch_norms(module: nn.Module, per_image: bool, bias: bool) -> None:
    for name, child in module.named_children():
        if isinstance(child, (nn.BatchNorm2d, nn.BatchNorm1d)):
            if per_image:
                setattr(module, name, nn.GroupNorm(1, child.num_features) if isinstance(child, nn.BatchNorm2d) else nn.LayerNorm(child.num_features))
            else:  # spectral norm; checkpoints from before spectral_norm_bias have no bias
                setattr(module, name, ChannelBias(child.num_features) if bias else nn.Identity())
        else:
            _replace_batch_norms(child, per_image, bias)
