"""Super-resolution: the degradation models learn to undo, quality measures, training tasks for
upscalers (srcnn, upgan), and upscaling whole images in overlapping tiles."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from gancli.config import TrainConfig
from gancli.data import ImageDataset
from gancli.images import save_grid, to_uint8
from gancli.models import build_discriminator, build_generator

MAX_PATCH = 48  # training crops: at most this many pixels a side
HELD_OUT = 64  # images kept out of training to measure PSNR on


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round [-1, 1] values to what a uint8 image file can hold."""
    return torch.round((x.clamp(-1, 1) + 1) * 127.5) / 127.5 - 1


def degrade(high: torch.Tensor, scale: int) -> torch.Tensor:
    """The low-res copy models learn to undo: antialiased bicubic downscaling, stored as uint8 would be."""
    h, w = high.shape[-2] // scale, high.shape[-1] // scale
    return quantize(F.interpolate(high, size=(h, w), mode="bicubic", antialias=True, align_corners=False))


def bicubic(low: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(low, scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in [-1, 1], over the whole batch."""
    mse = F.mse_loss((a.clamp(-1, 1) + 1) / 2, (b.clamp(-1, 1) + 1) / 2).item()
    return 10 * math.log10(1 / mse) if mse > 0 else float("inf")


def psnr_each(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of each image pair (B,), images in [-1, 1]; identical pairs give 100 dB."""
    mse = (((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2) ** 2).flatten(1).double().mean(1)
    return 10 * torch.log10(1 / mse.clamp_min(1e-10))


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    return ssim_each(a, b).mean().item()


def ssim_each(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Structural similarity (Wang et al., 2004) of each image pair (B,), images in [-1, 1]: 11x11
    Gaussian window, sigma 1.5, K1 0.01, K2 0.03, per channel on the valid region, then averaged."""
    x, y = (a.clamp(-1, 1).double() + 1) / 2, (b.clamp(-1, 1).double() + 1) / 2
    size = min(11, x.shape[-1], x.shape[-2])
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    window = (g[:, None] * g[None, :] / g.sum() ** 2).expand(x.shape[1], 1, size, size).contiguous()

    def blur(t):
        return F.conv2d(t, window, groups=x.shape[1])

    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return index.flatten(1).mean(1)


# --- training ----------------------------------------------------------------------------------


class UpscalerTask:
    """What train() needs to fit an upscaler: random crops as targets, their degraded copies as inputs.

    srcnn minimises MSE; upgan adds a discriminator at the high resolution and weighs an L1
    content loss against the adversarial one. PSNR is measured on held-out images.
    """

    best_metric = ("PSNR", "max")

    def __init__(self, config: TrainConfig, dataset: ImageDataset, device: torch.device):
        self.config, self.device = config, device
        self.patch = (min(config.image_size, MAX_PATCH) // config.scale) * config.scale
        held = HELD_OUT if len(dataset) >= 4 * HELD_OUT else 0
        self.train_count = len(dataset) - held
        self.images = dataset.images.to(device)
        eval_images = self.images[self.train_count :] if held else self.images[: min(len(dataset), HELD_OUT)]
        self.eval_high = self._centre(eval_images.float() / 127.5 - 1)
        self.eval_low = degrade(self.eval_high, config.scale)
        self.bicubic_psnr = psnr(bicubic(self.eval_low, config.scale), self.eval_high)
        self.upscaler = build_generator(config).to(device)
        self.discriminator = build_discriminator(config)
        adversarial = self.discriminator is not None
        betas = (config.beta1, config.beta2) if adversarial else (0.9, 0.999)  # plain regression: Adam's usual betas
        self.modules = {"generator": self.upscaler}
        self.optimizers = {"optimizer_g": torch.optim.Adam(self.upscaler.parameters(), lr=config.lr_g, betas=betas)}
        if adversarial:
            self.discriminator = self.discriminator.to(device)
            self.modules["discriminator"] = self.discriminator
            self.optimizers["optimizer_d"] = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_d, betas=betas)
        self.stat_names = ("loss_D", "loss_G", "content_L1") if adversarial else ("loss_MSE",)
        self.noise = torch.Generator(device=device).manual_seed(config.seed + 1)
        self.notices = [] if held else [f"Only {len(dataset)} images: PSNR is measured on training images, not held-out ones."]
        if config.precision != "fp32":
            self.notices.append(f"--precision {config.precision} is not implemented for upscalers yet; training in fp32.")

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
        opt_g = self.optimizers["optimizer_g"]
        if self.discriminator is None:
            opt_g.zero_grad(set_to_none=True)
            loss = F.mse_loss(self.upscaler(low), high)
            loss.backward()
            opt_g.step()
            return loss.detach().view(1)
        return self._adversarial_step(low, high)

    def _adversarial_step(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        d, opt_d, opt_g = self.discriminator, self.optimizers["optimizer_d"], self.optimizers["optimizer_g"]
        ones = torch.ones(high.shape[0], device=high.device)
        # (1) D: real high-res images against upscaled ones
        opt_d.zero_grad(set_to_none=True)
        fake = self.upscaler(low)
        loss_d = F.binary_cross_entropy_with_logits(d(high), ones) + F.binary_cross_entropy_with_logits(d(fake.detach()), 0 * ones)
        loss_d.backward()
        opt_d.step()
        # (2) G: fool D while staying close to the target (L1 content loss)
        opt_g.zero_grad(set_to_none=True)
        content = F.l1_loss(fake, high)
        loss_g = F.binary_cross_entropy_with_logits(d(fake), ones) + self.config.content_weight * content
        loss_g.backward()
        opt_g.step()
        return torch.stack([loss_d, loss_g, content]).detach()

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        self.upscaler.eval()
        value = psnr(self.upscaler(self.eval_low), self.eval_high)
        self.upscaler.train()
        return {"PSNR": value, "PSNR_bicubic": self.bicubic_psnr}

    @torch.no_grad()
    def preview(self, path: Path) -> None:
        """Rows: bicubic, the model, the original, for 8 held-out images."""
        self.upscaler.eval()
        low, high = self.eval_low[:8], self.eval_high[:8]
        rows = torch.cat([bicubic(low, self.config.scale), self.upscaler(low), high])
        self.upscaler.train()
        save_grid(to_uint8(rows), path, nrow=len(low))


# --- upscaling images ----------------------------------------------------------------------------

TILE = 128  # low-res pixels a side per tile
OVERLAP = 8  # low-res pixels of context around each tile, cropped away after upscaling


@torch.no_grad()
def upscale_tensor(upscaler: torch.nn.Module, low: torch.Tensor, scale: int, tile: int = TILE, overlap: int = OVERLAP) -> torch.Tensor:
    """Upscale (1, C, h, w) in [-1, 1] in overlapping tiles, so memory stays bounded for any size."""
    _, _, h, w = low.shape
    if h <= tile and w <= tile:
        return upscaler(low).clamp(-1, 1)
    out = torch.empty(low.shape[0], low.shape[1], h * scale, w * scale, device=low.device)
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            t0, l0 = max(top - overlap, 0), max(left - overlap, 0)
            t1, l1 = min(top + tile + overlap, h), min(left + tile + overlap, w)
            piece = upscaler(low[..., t0:t1, l0:l1]).clamp(-1, 1)
            bottom, right = min(top + tile, h), min(left + tile, w)
            out[..., top * scale : bottom * scale, left * scale : right * scale] = piece[
                ..., (top - t0) * scale : (bottom - t0) * scale, (left - l0) * scale : (right - l0) * scale
            ]
    return out


def upscale_image(upscaler: torch.nn.Module, model_channels: int, image: torch.Tensor, passes: int, scale: int, device) -> torch.Tensor:
    """uint8 (C, h, w) -> uint8 (C, h * scale**passes, ...). A one-channel model runs on each colour channel."""
    x = image.float().div(127.5).sub(1).unsqueeze(0).to(device)
    for _ in range(passes):
        if model_channels == x.shape[1]:
            x = upscale_tensor(upscaler, x, scale)
        elif model_channels == 1:
            x = torch.cat([upscale_tensor(upscaler, x[:, c : c + 1], scale) for c in range(x.shape[1])], dim=1)
        else:  # a colour model on a greyscale image: run it on grey RGB, keep one channel
            x = upscale_tensor(upscaler, x.expand(-1, model_channels, -1, -1), scale).mean(1, keepdim=True)
    return to_uint8(x[0])


class UpscaledGenerator(torch.nn.Module):
    """A generator whose images pass through an upscaler: `sample --upscale` (generate small, then upscale)."""

    def __init__(self, generator: torch.nn.Module, upscaler: torch.nn.Module, channels: int, scale: int):
        super().__init__()
        self.generator, self.upscaler, self.channels, self.scale = generator, upscaler, channels, scale
        self.conditional = getattr(generator, "conditional", False)

    def forward(self, z: torch.Tensor, *condition) -> torch.Tensor:
        return self._up(self.generator(z, *condition))

    def from_embedding(self, z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return self._up(self.generator.from_embedding(z, e))

    def embed(self, y: torch.Tensor) -> torch.Tensor:
        return self.generator.embed(y)

    def _up(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] == self.channels:
            return self.upscaler(images).clamp(-1, 1)
        if self.channels == 1:  # a greyscale upscaler on colour images: one channel at a time
            return torch.cat([self.upscaler(images[:, c : c + 1]) for c in range(images.shape[1])], dim=1).clamp(-1, 1)
        return self.upscaler(images.expand(-1, self.channels, -1, -1)).mean(1, keepdim=True).clamp(-1, 1)


@torch.no_grad()
def benchmark(upscaler: torch.nn.Module, channels: int, model_scale: int, passes: int, images: list[torch.Tensor], device) -> dict[str, dict[str, float]]:
    """Downscale each uint8 (C, H, W) image by model_scale**passes, restore it with the model and with
    bicubic, and return mean PSNR and SSIM of each against the original."""
    scale = model_scale**passes
    scores: dict[str, dict[str, list[float]]] = {m: {"PSNR": [], "SSIM": []} for m in ("bicubic", "model")}
    groups: dict[tuple, list[torch.Tensor]] = {}
    for image in images:
        h, w = (image.shape[-2] // scale) * scale, (image.shape[-1] // scale) * scale
        groups.setdefault((image.shape[0], h, w), []).append(image[:, :h, :w])
    for same_size in groups.values():
        for start in range(0, len(same_size), 256):
            high = torch.stack(same_size[start : start + 256]).float().div(127.5).sub(1).to(device)
            low = degrade(high, scale)
            restored = {"bicubic": quantize(bicubic(low, scale))}
            x = low
            for _ in range(passes):
                x = UpscaledGenerator(torch.nn.Identity(), upscaler, channels, model_scale)(x)
            restored["model"] = quantize(x)
            for method, out in restored.items():
                scores[method]["PSNR"] += psnr_each(out, high).tolist()
                scores[method]["SSIM"] += ssim_each(out, high).tolist()
    return {m: {k: sum(v) / len(v) for k, v in d.items()} for m, d in scores.items()}
