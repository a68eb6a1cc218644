"""Converting between model tensors in [-1, 1], uint8 images and files; grids via torchvision."""

from __future__ import annotations

import glob
import math
from pathlib import Path

import torch

from gancli.data import IMAGE_EXTENSIONS
from gancli.errors import GancliError, UsageError


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Model output in [-1, 1] -> uint8 in [0, 255] (rounded, as save_image does)."""
    return ((images.detach().float().cpu() + 1) * 127.5 + 0.5).clamp_(0, 255).to(torch.uint8)


def square_nrow(n: int) -> int:
    """Images per row for a square-ish grid: 25 -> 5, 10 -> 4."""
    return max(1, math.ceil(math.sqrt(n)))


def grid_layout(n: int, nrow: int | None) -> str:
    """How a grid of n images is laid out, in words: '5 per row, 5 rows'."""
    columns = min(nrow or square_nrow(n), n)
    rows = -(-n // columns)
    return f"{columns} per row, {rows} row{'s' if rows > 1 else ''}"


def check_writable(folder: Path) -> None:
    """Fail early, before any work, when `folder` cannot be created or written."""
    import os

    folder = Path(folder) if str(folder) else Path(".")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"Cannot write to '{folder}': '{existing}' is a file; choose another path.")
    if not os.access(existing, os.W_OK):
        raise UsageError(f"Cannot write to '{folder}': permission denied; choose another path.")


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None, padding: int = 2) -> None:
    """Save uint8 images (N, C, H, W) as one grid PNG."""
    from torchvision.utils import save_image

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(images.float() / 255, str(path), nrow=nrow or square_nrow(len(images)), padding=padding)
    except (OSError, ValueError) as exc:  # ValueError: an extension Pillow cannot write
        raise GancliError(f"Cannot write '{path}' ({exc}); choose another --out.") from exc


def save_each(images: torch.Tensor, paths: list[Path]) -> None:
    """Save uint8 images (N, C, H, W) one PNG each."""
    from torchvision.transforms.functional import to_pil_image

    for image, path in zip(images, paths):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            to_pil_image(image).save(path)
        except OSError as exc:
            raise GancliError(f"Cannot write '{path}' ({exc}); choose another --out-dir.") from exc


def expand_image_paths(items: list[str]) -> list[Path]:
    """Files, folders (recursively) and glob patterns -> image files, in the order given."""
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(item):
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True))
            if not matches:
                raise UsageError(f"The pattern '{item}' matches no files.")
            found += [p for p in matches if p.is_file()]
        else:
            raise UsageError(f"'{item}' does not exist; give image files, folders or glob patterns.")
    if not found:
        raise UsageError(f"No images found in {', '.join(repr(i) for i in items)} (looked for {', '.join(IMAGE_EXTENSIONS)}).")
    return found


def load_image(path: Path) -> torch.Tensor:
    """One image file as uint8 (C, H, W): L for greyscale files, RGB otherwise (alpha dropped)."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms.functional import pil_to_tensor

    try:
        with Image.open(path) as img:
            img.load()
            mode = "L" if img.mode in ("1", "L", "LA", "I", "I;16") else "RGB"
            return pil_to_tensor(img.convert(mode))
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise GancliError(f"Cannot read image '{path}' ({exc}); remove it or pass other files.") from exc


def load_images_like_first(paths: list[Path]) -> torch.Tensor:
    """uint8 (N, C, H, W): every image resized to the first one's size; RGB if any is in colour."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms.functional import pil_to_tensor

    pictures = []
    for path in paths:
        try:
            with Image.open(path) as img:
                img.load()
                pictures.append(img.copy())
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
            raise GancliError(f"Cannot read image '{path}' ({exc}); remove it or pass other files.") from exc
    mode = "L" if all(p.mode in ("1", "L", "LA", "I", "I;16") for p in pictures) else "RGB"
    size = pictures[0].size
    return torch.stack(
        [pil_to_tensor(p.convert(mode).resize(size, Image.Resampling.BICUBIC) if p.size != size else p.convert(mode)) for p in pictures]
    )


GIF_MIN_SIDE = 128


def save_gif(images: torch.Tensor, path: Path, fps: float) -> None:
    """uint8 frames (N, C, H, W) -> an animated GIF that loops forever; small frames are enlarged
    (nearest neighbour, whole factors) to at least GIF_MIN_SIDE pixels so they can be seen."""
    from PIL import Image
    from torchvision.transforms.functional import to_pil_image

    factor = max(1, -(-GIF_MIN_SIDE // max(images.shape[-1], images.shape[-2])))
    frames = []
    for image in images:
        frame = to_pil_image(image).convert("RGB")
        frames.append(frame.resize((frame.width * factor, frame.height * factor), Image.Resampling.NEAREST))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0)
    except (OSError, ValueError) as exc:
        raise GancliError(f"Cannot write '{path}' ({exc}); choose another --gif.") from exc
