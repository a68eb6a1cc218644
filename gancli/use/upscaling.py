"""Upscaling images: the degradation upscalers learn to undo, tiled inference for images of any size,
generate-then-upscale, and the PSNR/SSIM benchmark against bicubic."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from gancli.errors import UsageError
from gancli.data.images import to_uint8
from gancli.evaluation.metrics import psnr_each, ssim_each


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round [-1, 1] values to what a uint8 image file can hold."""
    return torch.round((x.clamp(-1, 1) + 1) * 127.5) / 127.5 - 1


def degrade(high: torch.Tensor, scale: int) -> torch.Tensor:
    """The low-res copy models learn to undo: antialiased bicubic downscaling, stored as uint8 would be."""
    h, w = high.shape[-2] // scale, high.shape[-1] // scale
    return quantize(F.interpolate(high, size=(h, w), mode="bicubic", antialias=True, align_corners=False))


def bicubic(low: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(low, scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)


TILE = 192  # low-res pixels a side per tile: 96-256 measured within 10% of each other; this keeps a tile of srcnn under 150 MB
OVERLAP = 8  # low-res pixels of context around each tile, cropped away after upscaling
MAX_OUTPUT_PIXELS = 256_000_000  # an upscaled image larger than this is refused (768 MB as RGB)
MAX_SCALE = 16


@torch.no_grad()
def upscale_tensor(upscaler: torch.nn.Module, low: torch.Tensor, scale: int, tile: int = TILE, overlap: int = OVERLAP) -> torch.Tensor:
    """Upscale (1, C, h, w) in [-1, 1] in overlapping tiles; returns float (1, C, h * scale, w * scale)."""
    out = torch.empty(low.shape[0], low.shape[1], low.shape[2] * scale, low.shape[3] * scale, device=low.device)
    for (top, bottom, left, right), piece in _tiles(upscaler, low, scale, tile, overlap):
        out[..., top * scale : bottom * scale, left * scale : right * scale] = piece
    return out


def _tiles(upscaler, low: torch.Tensor, scale: int, tile: int, overlap: int):
    """((top, bottom, left, right) in low-res pixels, the upscaled tile without its overlap) over the image."""
    _, _, h, w = low.shape
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            t0, l0 = max(top - overlap, 0), max(left - overlap, 0)
            t1, l1 = min(top + tile + overlap, h), min(left + tile + overlap, w)
            piece = upscaler(low[..., t0:t1, l0:l1]).clamp(-1, 1)
            bottom, right = min(top + tile, h), min(left + tile, w)
            yield (top, bottom, left, right), piece[..., (top - t0) * scale : (bottom - t0) * scale, (left - l0) * scale : (right - l0) * scale]


@torch.no_grad()
def _upscale_uint8(upscaler, model_channels: int, image: torch.Tensor, scale: int, device, advance=None) -> torch.Tensor:
    """uint8 (C, h, w) -> uint8 (C, h * scale, w * scale), tile by tile: memory holds the images and one tile.

    A one-channel model takes the colour channels as a batch; channels_last convolutions: measured
    1.5x faster for srcnn on a 2-core CPU.
    """
    channels = image.shape[0]
    if model_channels == channels:
        low, narrow = image.unsqueeze(0), lambda y: y[0]
    elif model_channels == 1:  # a greyscale model on colour: each channel an image of the batch
        low, narrow = image.unsqueeze(1), lambda y: y[:, 0]
    else:  # a colour model on a greyscale image: grey RGB in, the mean out
        low, narrow = image.unsqueeze(0).expand(-1, model_channels, -1, -1), lambda y: y.mean(1)
    upscaler.to(memory_format=torch.channels_last)
    low = low.to(device).float().div_(127.5).sub_(1).contiguous(memory_format=torch.channels_last)
    out = torch.empty(channels, image.shape[1] * scale, image.shape[2] * scale, dtype=torch.uint8)
    for (top, bottom, left, right), piece in _tiles(upscaler, low, scale, TILE, OVERLAP):
        out[:, top * scale : bottom * scale, left * scale : right * scale] = to_uint8(narrow(piece))
        if advance is not None:
            advance((bottom - top) * (right - left))
    return out


def upscale_image(upscaler: torch.nn.Module, model_channels: int, image: torch.Tensor, passes: int, scale: int, device, advance=None) -> torch.Tensor:
    """uint8 (C, h, w) -> uint8 (C, h * scale**passes, ...). A one-channel model runs on each colour channel.

    Between passes the image is rounded to uint8, as the low-res images the model learnt from were.
    """
    check_output_size(image.shape[-2], image.shape[-1], scale**passes)
    for _ in range(passes):
        image = _upscale_uint8(upscaler, model_channels, image, scale, device, advance)
    return image


def work_pixels(height: int, width: int, passes: int, scale: int) -> int:
    """The input pixels all passes of an upscale go through: what its progress bar counts."""
    return sum(height * width * scale ** (2 * p) for p in range(passes))


def check_output_size(height: int, width: int, scale: int) -> None:
    if height * width * scale * scale > MAX_OUTPUT_PIXELS:
        raise UsageError(
            f"x{scale} would make a {width}x{height} image {width * scale}x{height * scale} pixels, over the limit of "
            f"{MAX_OUTPUT_PIXELS // 1_000_000} megapixels; use a smaller --scale or crop the image first."
        )


class UpscaledGenerator(torch.nn.Module):
    """A generator whose images pass through an upscaler: `sample --upscale` (generate small, then upscale)."""

    def __init__(self, generator: torch.nn.Module, upscaler: torch.nn.Module, channels: int, scale: int):
        super().__init__()
        self.generator, self.upscaler, self.channels, self.scale = generator, upscaler, channels, scale

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


def upscale_files(paths: list[Path], outputs: list[Path], scale: int, upscaler: torch.nn.Module | None, channels: int, passes: int,
                  model_scale: int, method: str, device, advance=None) -> None:  # fmt: skip
    """Upscale each image file into its output path, with the model (`passes` times) or a classical filter.

    `advance` is told the input pixels of every tile done (classical filters: of every image).
    """
    from gancli.data.images import image_size, load_image, save_each

    for path, output in zip(paths, outputs):
        width, height = image_size(path)
        check_output_size(height, width, scale)  # from the header: refused before a pixel is decoded
        image = load_image(path)
        if upscaler is not None:
            result = upscale_image(upscaler, channels, image, passes, model_scale, device, advance)
        else:
            result = classical_upscale(image, scale, method)
            if advance is not None:
                advance(work_pixels(image.shape[-2], image.shape[-1], 1, 1))
        save_each(result.unsqueeze(0), [output])


def classical_upscale(image: torch.Tensor, scale: int, method: str) -> torch.Tensor:
    """uint8 (C, h, w) enlarged `scale` times with Pillow's bicubic or lanczos filter."""
    from PIL import Image
    from gancli.data.images import from_pil, to_pil

    picture = to_pil(image)
    filters = {"bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}
    return from_pil(picture.resize((picture.width * scale, picture.height * scale), filters[method]))


def benchmark_images(source: str, data_dir: Path | None, limit: int | None) -> tuple[list[torch.Tensor], str]:
    """The high-res images of a --benchmark: a named dataset's test split, or image files; and a description."""
    from gancli.data.datasets import NAMED_DATASETS, load_test_images
    from gancli.data.images import expand_image_paths, load_image

    if source in NAMED_DATASETS:
        images, _, what = load_test_images(source, data_dir)
        images = images[:limit] if limit else images
        return list(images), what
    paths = expand_image_paths([source])[:limit]
    return [load_image(p) for p in paths], f"from {source}"



# --- what `gancli upscale` does, for the API ------------------------------------------------------


@dataclass
class Plan:
    """How an upscale reaches its factor: the model (None for a classical filter), its own factor and the passes."""

    model: object | None  # an api.Model of kind upscaler
    factor: int
    passes: int
    source: str  # "srcnn x2 from runs/sr/..., applied 2 times", or the filter's name

    @property
    def scale(self) -> int:
        return self.factor**self.passes


def plan_upscale(model, method: str, scale: int | None) -> Plan:
    """The passes of a model (a x2 model reaches 4, 8, 16 by repeating), or a classical filter's single step."""
    import math

    if method not in ("model", "bicubic", "lanczos"):
        raise UsageError(f"method={method!r}; use 'model', 'bicubic' or 'lanczos'.")
    if method != "model":
        if model is not None:
            raise UsageError(f"--model goes with --method model; drop it to use {method}.")
        return Plan(None, scale or 2, 1, method)
    factor = model.config.scale
    passes = round(math.log(scale or factor, factor))
    if factor**passes != (scale or factor):
        raise UsageError(f"--scale {scale} cannot be reached with the x{factor} model '{model.path}'; use a power of {factor}.")
    return Plan(model, factor, passes, f"{model.config.arch} x{factor} from {model.path}" + (f", applied {passes} times" if passes > 1 else ""))


def upscale_paths(plan: Plan, inputs: list[str], outdir: Path, existing: str = "refuse", device="cpu", progress=None) -> tuple[int, int]:
    """Upscale image files (files, folders, globs) into `outdir` under their own names; (written, kept existing)."""
    from gancli.data.folder_cache import silent_work
    from gancli.data.images import check_writable, expand_image_paths, image_size
    from gancli.store.files import existing_names, refuse_existing, refuse_overwriting_inputs, refuse_shared_outputs, remove_orphans

    paths = expand_image_paths(inputs)
    outputs = [outdir / f"{p.stem}.png" for p in paths]
    refuse_overwriting_inputs(outputs, paths)
    refuse_shared_outputs(outputs, paths)
    check_writable(outdir)
    remove_orphans(outdir, depth=0)  # the temporary files of an upscale that was killed
    found = sorted(existing_names(outdir) & {o.name for o in outputs})
    refuse_existing(outdir, found, existing)
    if existing == "skip":
        kept = {outdir / name for name in found}
        paths, outputs = [p for p, o in zip(paths, outputs) if o not in kept], [o for o in outputs if o not in kept]
    else:
        found = []
    if not paths:
        return 0, len(found)
    sizes = [image_size(p) for p in paths]
    for w, h in sizes:
        check_output_size(h, w, plan.scale)  # every image, from its header, before any work
    model = plan.model
    total = sum(work_pixels(h, w, plan.passes, plan.factor) if model is not None else h * w for w, h in sizes)
    with (progress or silent_work)(total, f"Upscaling {len(paths)} image(s) x{plan.scale}") as advance:
        upscale_files(paths, outputs, plan.scale, model.net if model else None, model.config.channels if model else 0, plan.passes,
                      plan.factor, plan.source if model is None else "model", model.device if model else device, advance)  # fmt: skip
    return len(paths), len(found)


def run_benchmark(plan: Plan, source: str, data_dir: Path | None, limit: int | None) -> tuple[dict, int, str]:
    """`upscale --benchmark`: (scores by method, images, what they are): the model against bicubic on downscaled images."""
    from gancli.data.datasets import trust_data_dir

    if plan.model is None:
        raise UsageError("--benchmark compares a trained upscaler with bicubic; give --model (and no --method).")
    trust_data_dir(data_dir)
    images, what = benchmark_images(source, data_dir, limit)
    smallest = 2 * plan.scale
    too_small = sum(1 for image in images if min(image.shape[-2:]) < smallest)
    if too_small:
        raise UsageError(f"{too_small} of the {len(images)} benchmark images are too small to downscale x{plan.scale}; each needs at least {smallest}x{smallest} pixels.")
    model = plan.model
    return benchmark(model.net, model.config.channels, plan.factor, plan.passes, images, model.device), len(images), what
