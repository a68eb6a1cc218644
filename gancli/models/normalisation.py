"""What the training recipe changes in a discriminator: its normalisation layers.

Spectral normalisation (Miyato et al., 2018) bounds every layer's Lipschitz constant; SN
discriminators use no BatchNorm. The gradient penalty of WGAN-GP is defined per image, which
BatchNorm breaks by mixing the images of a batch; there a per-image layer norm replaces it.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm


def adapt_discriminator(discriminator: nn.Module, config) -> nn.Module:
    per_image = config.loss == "wgan-gp"
    if per_image or config.spectral_norm:
        _replace_batch_norms(discriminator, per_image)
    if config.spectral_norm:
        for module in list(discriminator.modules()):
            if isinstance(module, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)) and not parametrize.is_parametrized(module):
                spectral_norm(module)  # (sagan's layers have it already)
    return discriminator


def _replace_batch_norms(module: nn.Module, per_image: bool) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, nn.GroupNorm(1, child.num_features) if per_image else nn.Identity())
        elif isinstance(child, nn.BatchNorm1d):
            setattr(module, name, nn.LayerNorm(child.num_features) if per_image else nn.Identity())
        else:
            _replace_batch_norms(child, per_image)
