"""The upscalers' task (srcnn, upgan): random crops as targets, their degraded copies as inputs.

srcnn minimises MSE; upgan adds a discriminator at the high resolution and weighs an L1 content
loss against the adversarial one. PSNR is measured on held-out images, next to bicubic's.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from gancli.training.losses import get_loss
from gancli.config import TrainConfig
from gancli.data.datasets import ImageDataset
from gancli.data.images import save_grid, to_uint8
from gancli.evaluation.metrics import psnr
from gancli.models import build_discriminator, build_generator
from gancli.training.tasks.base import Stat, Task
from gancli.use.upscaling import bicubic, degrade

MAX_PATCH = 48  # training crops: at most this many pixels a side
HELD_OUT = 64  # images kept out of training to measure PSNR on


class UpscalerTask(Task):
    """Fits an upscaler on random crops of the training images; PSNR on the held-out last images."""

    scores = (Stat("PSNR", fmt="{:.2f} dB", panel="held-out PSNR (dB)"), Stat("PSNR_bicubic", "bicubic", fmt="{:.2f} dB", panel="held-out PSNR (dB)"))
    best_metric = ("PSNR", "max")

    def __init__(self, config: TrainConfig, dataset: ImageDataset, device: torch.device):
        super().__init__(config, dataset, device)
        self.patch = (min(config.image_size, MAX_PATCH) // config.scale) * config.scale
        held = HELD_OUT if len(dataset) >= 4 * HELD_OUT else 0
        self.train_count = len(dataset) - held
        self.images = dataset.images.to(device)
        eval_images = self.images[self.train_count :] if held else self.images[: min(len(dataset), HELD_OUT)]
        self.eval_high = self._centre(eval_images.float() / 127.5 - 1)
        self.eval_low = degrade(self.eval_high, config.scale)
        self.psnr = {"PSNR": None, "PSNR_bicubic": psnr(bicubic(self.eval_low, config.scale), self.eval_high)}
        discriminator = build_discriminator(config)
        self.adversarial = discriminator is not None
        betas = (config.beta1, config.beta2) if self.adversarial else (0.9, 0.999)  # plain regression: Adam's usual betas
        self.add("generator", build_generator(config), config.lr_g, betas, "optimizer_g")
        if self.adversarial:
            self.add("discriminator", discriminator, config.lr_d, betas, "optimizer_d")
        loss = Stat("loss_D", panel="losses"), Stat("loss_G", panel="losses"), Stat("content_L1", panel="content loss")
        self.stats = loss if self.adversarial else (Stat("loss_MSE", fmt="{:.4g}", panel="loss"),)
        if not held:
            self.notices.append(f"Only {len(dataset)} images: PSNR is measured on training images, not held-out ones.")

    def _centre(self, images: torch.Tensor) -> torch.Tensor:
        top = (images.shape[-2] - self.patch) // 2
        left = (images.shape[-1] - self.patch) // 2
        return images[..., top : top + self.patch, left : left + self.patch]

    def step(self, index: torch.Tensor) -> torch.Tensor:
        high = self.images[index].float().div_(127.5).sub_(1)
        room_y, room_x = high.shape[-2] - self.patch, high.shape[-1] - self.patch
        offsets = torch.randint(0, max(room_y, room_x) + 1, (2,), generator=self.noise, device=self.device).tolist()
        top, left = min(offsets[0], room_y), min(offsets[1], room_x)
        high = high[..., top : top + self.patch, left : left + self.patch]
        if torch.rand((), generator=self.noise, device=self.device).item() < 0.5:
            high = high.flip(-1)
        low = degrade(high, self.config.scale)
        if self.adversarial:
            return self._adversarial_step(low, high)
        opt_g = self.optimizers["optimizer_g"]
        opt_g.zero_grad(set_to_none=True)
        with self.autocast():
            loss = F.mse_loss(self.nets["generator"](low).float(), high)
        loss.backward()
        opt_g.step()
        return loss.detach().view(1)

    def _adversarial_step(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        g, d = self.nets["generator"], self.nets["discriminator"]
        opt_d, opt_g = self.optimizers["optimizer_d"], self.optimizers["optimizer_g"]
        adversarial = get_loss("bce")  # the non-saturating loss, as the GANs' default
        # (1) D: real high-res images against upscaled ones
        opt_d.zero_grad(set_to_none=True)
        with self.autocast():
            fake = g(low)
            real_logits, fake_logits = d(high).float(), d(fake.detach()).float()
            loss_d = adversarial.discriminator(real_logits, fake_logits)
        loss_d.backward()
        opt_d.step()
        # (2) G: fool D while staying close to the target (L1 content loss)
        opt_g.zero_grad(set_to_none=True)
        with self.autocast():
            content = F.l1_loss(fake.float(), high)
            loss_g = adversarial.generator(d(fake).float()) + self.config.content_weight * content
        loss_g.backward()
        opt_g.step()
        return torch.stack([loss_d, loss_g, content]).detach()

    def latest(self) -> dict[str, float | None]:
        return dict(self.psnr)

    @torch.no_grad()
    def measure(self, step: int, final: bool = False) -> None:
        net = self.modules["generator"]
        net.eval()
        self.psnr["PSNR"] = psnr(net(self.eval_low), self.eval_high)
        net.train()

    @torch.no_grad()
    def preview(self, path: Path) -> None:
        """Rows: bicubic, the model, the original, for 8 held-out images."""
        net = self.modules["generator"]
        net.eval()
        low, high = self.eval_low[:8], self.eval_high[:8]
        rows = torch.cat([bicubic(low, self.config.scale), net(low), high])
        net.train()
        save_grid(to_uint8(rows), path, nrow=len(low))
