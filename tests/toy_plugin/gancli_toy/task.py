"""The denoising autoencoder and its task: clean images from noisy ones, mean squared error."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gancli.data.images import save_grid, to_uint8
from gancli.models import build_generator
from gancli.training.tasks.base import Stat, Task

NOISE = 0.5  # standard deviation of the noise added to images in [-1, 1]


class Autoencoder(nn.Module):
    """image (B, C, S, S) in [-1, 1] -> the image without its noise, in [-1, 1]."""

    def __init__(self, config):
        super().__init__()
        c, w = config.channels, config.generator_width
        self.body = nn.Sequential(nn.Conv2d(c, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, c, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.body(x))


class DenoiseTask(Task):
    stats = (Stat("loss_MSE", fmt="{:.4g}", panel="reconstruction"),)

    def __init__(self, config, dataset, device):
        super().__init__(config, dataset, device)
        self.images = dataset.images
        self.add("autoencoder", build_generator(config), lr=1e-3)
        fixed = torch.Generator().manual_seed(config.seed)
        clean = self.images[:8].float().div(127.5).sub(1)
        self.fixed = (clean, clean + NOISE * torch.randn(clean.shape, generator=fixed))

    def step(self, index: torch.Tensor) -> torch.Tensor:
        clean = self.images[index].to(self.device).float().div_(127.5).sub_(1)
        noisy = clean + NOISE * torch.randn(clean.shape, device=self.device, generator=self.noise)
        optimizer = self.optimizers["optimizer_autoencoder"]
        optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            loss = F.mse_loss(self.nets["autoencoder"](noisy).float(), clean)
        loss.backward()
        optimizer.step()
        return loss.detach().view(1)

    @torch.no_grad()
    def preview(self, path: Path) -> None:
        """Three rows: clean, noisy, denoised."""
        clean, noisy = self.fixed
        denoised = self.modules["autoencoder"](noisy.to(self.device))
        save_grid(torch.cat([to_uint8(clean), to_uint8(noisy), to_uint8(denoised)]), path, nrow=8)
