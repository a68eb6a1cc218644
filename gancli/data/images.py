"""Converting between model tensors in [-1, 1], uint8 images and files; grids via torchvision."""

from __future__ import annotations

import contextlib
import glob
import math
import warnings
from pathlib import Path

import torch

from gancli.errors import GancliError, UsageError
from gancli.store.files import atomic_path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")  # what folders of images are read for


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Model output in [-1, 1] -> uint8 in [0, 255] (rounded, as save_image does)."""
    return ((images.detach().float().cpu() + 1) * 127.5 + 0.5).clamp_(0, 255).to(torch.uint8)


def square_nrow(n: int) -> int:
    """Images per row for a square-ish grid: 25 -> 5, 10 -> 4."""
    return max(1, math.ceil(math.sqrt(n)))


def grid_of(n: int) -> str:
    """'a grid of 25 images', 'a grid of 1 image'."""
    return f"a grid of {n:,} image{'' if n == 1 else 's'}"


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


def to_pil(image: torch.Tensor):
    """uint8 (C, H, W) -> a Pillow image: L for one channel, RGB for three."""
    from PIL import Image

    array = image.permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)


def from_pil(picture) -> torch.Tensor:
    """A Pillow image (L or RGB) -> uint8 (C, H, W)."""
    import numpy as np

    array = np.array(picture)  # a writable copy: torch refuses read-only memory
    return torch.from_numpy(array[..., None] if array.ndim == 2 else array).permute(2, 0, 1).contiguous()


class Grid:
    """A uint8 canvas that images are pasted into batch by batch (torchvision's make_grid layout), so a
    grid of many images never holds more than the canvas and one batch."""

    def __init__(self, count: int, shape: tuple[int, int, int], nrow: int | None = None, padding: int = 2):
        channels, h, w = shape
        self.columns = min(nrow or square_nrow(count), count)
        rows = -(-count // self.columns)
        self.cell = (h + padding, w + padding)
        self.padding, self.count, self.placed = padding, count, 0
        size = (rows * self.cell[0] + padding, self.columns * self.cell[1] + padding) if count > 1 else (h, w)
        check_grid_size(*size)
        self.canvas = torch.zeros(channels, *size, dtype=torch.uint8)

    def add(self, images: torch.Tensor) -> None:
        if self.count == 1:
            self.canvas.copy_(images[0])
            self.placed = 1
            return
        for image in images:
            row, column = divmod(self.placed, self.columns)
            top, left = row * self.cell[0] + self.padding, column * self.cell[1] + self.padding
            self.canvas[:, top : top + image.shape[1], left : left + image.shape[2]] = image
            self.placed += 1

    def save(self, path: Path, what: str = "--out") -> None:
        with atomic_path(path, what) as tmp:
            to_pil(self.canvas).convert("RGB").save(tmp, format=_format_of(path, what))


MAX_GRID_PIXELS = 100_000_000  # 100 megapixels: 300 MB as RGB; larger grids are refused with a hint


def check_grid_size(height: int, width: int) -> None:
    if height * width > MAX_GRID_PIXELS:
        raise UsageError(
            f"A grid of {width}x{height} pixels is over the limit of {MAX_GRID_PIXELS // 1_000_000} megapixels; "
            "write the images as files with --outdir, or ask for fewer."
        )


def _format_of(path: Path, what: str) -> str:
    from PIL import Image

    Image.init()
    try:
        return Image.EXTENSION[Path(path).suffix.lower()]
    except KeyError:
        raise UsageError(f"Cannot write '{path}': unknown image type '{Path(path).suffix}'; give {what} a .png (or .jpg) name.") from None


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None, padding: int = 2) -> None:
    """Save uint8 images (N, C, H, W) as one grid PNG, written atomically."""
    grid = Grid(len(images), tuple(images.shape[1:]), nrow, padding)
    grid.add(images)
    grid.save(path)


def png_bytes(image: torch.Tensor) -> bytes:
    """One uint8 (C, H, W) image as the PNG file `sample --outdir` writes for it, byte for byte."""
    import io

    buffer = io.BytesIO()
    to_pil(image).save(buffer, format="PNG")
    return buffer.getvalue()


def save_each(images: torch.Tensor, paths: list[Path]) -> None:
    """Save uint8 images (N, C, H, W) one PNG each, each written atomically."""
    for image, path in zip(images, paths):
        picture = to_pil(image)
        with atomic_path(path, "--outdir") as tmp:
            picture.save(tmp, format=_format_of(path, "--outdir"))


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
            matches = _glob(item)
            if not matches:
                raise UsageError(f"The pattern '{item}' matches no files.")
            found += [p for p in matches if p.is_file()]
        else:
            raise UsageError(f"'{item}' does not exist; give image files, folders or glob patterns.")
    if not found:
        raise UsageError(f"No images found in {', '.join(repr(i) for i in items)} (looked for {', '.join(IMAGE_EXTENSIONS)}).")
    return found


MAX_INPUT_PIXELS = 250_000_000  # larger images are refused before decoding (Pillow's own bomb check is a warning at 89 MP)
MAX_DECODED_BYTES = 768 * 2**20  # and so is any whose decoded pixels alone would take more (Pillow keeps RGB as 4 bytes)
REDUCE_FROM = 64 * 2**20  # decoded images larger than this are reduced first when only a small version is wanted
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def decoded_bytes(img) -> int:
    """What Pillow will hold for the decoded image, from its header: 1 byte a pixel for 1, L and P, 2 for 16-bit, else 4."""
    per_pixel = 1 if img.mode in ("1", "L", "P") else 2 if img.mode.startswith("I;16") else 4
    return img.width * img.height * per_pixel


@contextlib.contextmanager
def open_image(path: Path):
    """A Pillow image of `path`, its size checked from the header before decoding; unreadable files raise GancliError."""
    from PIL import Image, UnidentifiedImageError

    from gancli.store.files import printable

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's warnings (bombs, palettes, EXIF) are ours to judge, not the user's to read
            with Image.open(path) as img:
                if img.width * img.height > MAX_INPUT_PIXELS or decoded_bytes(img) > MAX_DECODED_BYTES:
                    raise UsageError(f"'{printable(path)}' is {img.width}x{img.height} pixels ({img.mode}), over gancli's limit of "
                                     f"{MAX_DECODED_BYTES // 2**20} MB decoded ({MAX_INPUT_PIXELS // 1_000_000} megapixels at most); shrink it first.")  # fmt: skip
                yield img
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, SyntaxError, ValueError, EOFError) as exc:
        raise GancliError(f"Cannot read image '{printable(path)}' ({exc}); remove it or pass other files.") from exc


def as_8bit(img, mode: str | None = None, fit: int | None = None):
    """An opened image as 8-bit L (greyscale) or RGB, upright by its EXIF orientation.

    16-bit greyscale (I;16, I) is scaled to 8 bits rather than clipped (it would otherwise be almost all white).
    `fit`: a large image (over REDUCE_FROM decoded) over twice that side is converted and reduced by a whole
    factor (box filter) to at least `fit` a band of rows at a time, so its full-size pixels are held once and
    never copied or converted whole (a palette or RGBA image would otherwise take 4 bytes a pixel again).
    """
    from PIL import ImageOps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        orientation = img.getexif().get(0x0112, 1)
        img.load()
        mode = mode or ("L" if img.mode in GREY_MODES else "RGB")
        eight_bit = _eight_bit(img, mode)
        if fit and decoded_bytes(img) > REDUCE_FROM and min(img.size) >= 2 * fit:
            img = _reduced_in_bands(img, min(img.size) // fit, eight_bit)
        else:
            img = eight_bit(img)
        if orientation not in (None, 1):
            img = ImageOps.exif_transpose(img)
        return img if img.mode == mode else img.convert(mode)


def _eight_bit(img, mode: str):
    """A function taking (a piece of) `img` to 8 bits: L for 16- and 32-bit greyscale (scaled to the whole image's
    range: 65535, 255 or 1.0), else `mode`."""
    import numpy as np
    from PIL import Image

    if img.mode not in _WIDE_MODES:
        return lambda part: part if part.mode == mode else part.convert(mode)
    top_value = img.getextrema()[1]
    top = 1.0 if img.mode == "F" and top_value <= 1 else 65535.0 if top_value > 255 else 255.0
    return lambda part: Image.fromarray(np.clip(np.asarray(part, dtype=np.float64) / top * 255 + 0.5, 0, 255).astype(np.uint8), "L")


def _reduced_in_bands(img, factor: int, convert, rows: int = 512):
    """img converted, then reduced `factor` times (box filter), a band of whole blocks at a time: the same pixels as
    convert(img).reduce(factor), with only a band held at full size."""
    from PIL import Image

    band_rows = max(1, rows // factor) * factor
    out = None
    for top in range(0, img.height, band_rows):
        band = convert(img.crop((0, top, img.width, min(img.height, top + band_rows)))).reduce(factor)
        out = out or Image.new(band.mode, (band.width, -(-img.height // factor)))
        out.paste(band, (0, top // factor))
    return out


def _glob(pattern: str) -> list[Path]:
    """Paths matching a glob pattern (** included) without following symbolic links to folders, which may loop."""
    parts = Path(pattern).parts
    first = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    root = Path(*parts[:first]) if first else Path(".")
    return sorted(root.glob(str(Path(*parts[first:])))) if root.is_dir() else []


def load_image(path: Path) -> torch.Tensor:
    """One image file as uint8 (C, H, W): L for greyscale files, RGB otherwise (alpha dropped)."""
    with open_image(path) as img:
        return from_pil(as_8bit(img))


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, from its header alone."""
    with open_image(path) as img:
        return img.size


MAX_GRID_CELL_PIXELS = 4_000_000  # `grid` shrinks its cells (the first image's size) to at most this


def grid_of_files(paths: list[Path], out: Path, nrow: int | None = None, padding: int = 2) -> tuple[int, int]:
    """One grid PNG of image files, every image brought to the first one's size (shrunk to fit the limits).

    Images are decoded one at a time and reduced to the cell size at once, so memory holds the
    canvas and one input. Returns (cell size, the first image's size), each (width, height).
    """
    from PIL import Image

    modes, sizes = [], []
    for path in paths:  # headers only: is any in colour, and how large is the first
        with open_image(path) as img:
            modes.append(img.mode)
            sizes.append(img.size)
    mode = "L" if all(m in GREY_MODES for m in modes) else "RGB"
    width, height = sizes[0]
    columns = min(nrow or square_nrow(len(paths)), len(paths))
    rows = -(-len(paths) // columns)
    shrink = min(1.0, (MAX_GRID_CELL_PIXELS / (width * height)) ** 0.5, (MAX_GRID_PIXELS / (columns * rows * width * height)) ** 0.5)
    cell = (max(1, int(width * shrink)), max(1, int(height * shrink)))
    grid = Grid(len(paths), (1 if mode == "L" else 3, cell[1], cell[0]), nrow, padding)
    for path in paths:
        with open_image(path) as img:
            picture = as_8bit(img, mode, fit=max(cell))
        if picture.size != cell:
            picture = picture.resize(cell, Image.Resampling.BICUBIC, reducing_gap=3.0)
        grid.add(from_pil(picture).unsqueeze(0))
    grid.save(out)
    return cell, (width, height)


GIF_MIN_SIDE = 128


def save_gif(batches, path: Path, fps: float) -> None:
    """uint8 frames (N, C, H, W), or an iterable of such batches, -> an animated GIF that loops forever; small
    frames are enlarged (nearest neighbour, whole factors) to at least GIF_MIN_SIDE pixels so they can be seen.
    Frames are made as Pillow asks for them (it keeps only their palette-coded form)."""
    from PIL import Image

    batches = [batches] if isinstance(batches, torch.Tensor) else batches

    def frames():
        for images in batches:
            factor = max(1, -(-GIF_MIN_SIDE // max(images.shape[-1], images.shape[-2])))
            for image in images:
                frame = to_pil(image).convert("RGB")
                yield frame.resize((frame.width * factor, frame.height * factor), Image.Resampling.NEAREST)

    stream = frames()
    first = next(stream)
    with atomic_path(path, "--gif") as tmp:
        first.save(tmp, format="GIF", save_all=True, append_images=stream, duration=round(1000 / fps), loop=0)
