"""Image folders decoded once: a uint8 .npy per folder and image size, reused while the folder is unchanged.

The first run on a folder decodes every file (on all cores for large folders) into
CACHE/data/<folder key>-<size>px/images.npy with labels.npy and index.json beside it; later runs
and resumes read that file instead. index.json names the source folder, the fingerprint of its file
list (relative paths, sizes and modification times), the size, channels, classes and the files that
could not be read. A changed fingerprint (a file added, removed or rewritten) means a fresh decode.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gancli.errors import GancliError

FORMAT = 1
POOL_FROM = 256  # fewer files decode faster in this process than a pool starts
CHUNK = 64  # files per task handed to a pool worker


@dataclass
class DecodeCount:
    """How many files this process decoded into caches: tests check that a cache hit decodes none."""

    files: int = 0


DECODED = DecodeCount()


def cache_root() -> Path:
    return Path(os.environ.get("GANCLI_CACHE_DIR") or Path.home() / ".cache" / "gancli") / "data"


def fingerprint(folder: Path, paths: list[Path]) -> str:
    h = hashlib.sha256(f"{FORMAT}".encode())
    for path in paths:
        stat = path.stat()
        h.update(f"{path.relative_to(folder).as_posix()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()


def cache_path(folder: Path, image_size: int) -> Path:
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return cache_root() / f"{folder.resolve().name[:40]}-{key}-{image_size}px"


@dataclass
class Decoded:
    images: np.ndarray  # uint8 (N, C, S, S), memory-mapped from the cache
    labels: np.ndarray | None  # int64 (N,)
    class_names: tuple[str, ...]
    skipped: list[str]  # relative paths of files that could not be read
    path: Path  # the cache folder
    hit: bool  # read from the cache (True) or decoded now


def decoded_folder(folder: Path, paths: list[Path], image_size: int, workers: int | None = None) -> Decoded:
    """The folder's images at image_size from the cache, decoding them first when it is missing or stale."""
    where = cache_path(folder, image_size)
    digest = fingerprint(folder, paths)
    cached = _read(where, digest)
    if cached is not None:
        return cached
    return _build(folder, paths, image_size, where, digest, workers)


def _read(where: Path, expected: str) -> Decoded | None:
    try:
        index = json.loads((where / "index.json").read_text())
        if index.get("format") != FORMAT or index.get("fingerprint") != expected:
            return None
        images = np.load(where / "images.npy", mmap_mode="r")
        labels = np.load(where / "labels.npy") if (where / "labels.npy").is_file() else None
    except (OSError, ValueError):
        return None  # missing or damaged: decoded again
    if images.shape[0] != index["count"] or images.dtype != np.uint8:
        return None
    return Decoded(images, labels, tuple(index["class_names"]), index["skipped"], where, hit=True)


def _build(folder: Path, paths: list[Path], image_size: int, where: Path, digest: str, workers: int | None) -> Decoded:
    from gancli.progress import work

    where.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{where.name}.", dir=where.parent))
    try:
        kept, colour, skipped = [], False, []
        workers = workers or (os.cpu_count() or 1)
        # Written in order as they arrive, through a file rather than a mapping: dirty mapped pages
        # would count in this process's memory, a file's pages are the kernel's to write back.
        with open(tmp / "rgb.raw", "wb") as raw, work(len(paths), f"Decoding {len(paths):,} images from '{folder}'") as advance:
            for start, results in _decode_all(paths, image_size, workers):
                for i, (array, in_colour) in enumerate(results):
                    if array is None:
                        skipped.append(paths[start + i].relative_to(folder).as_posix())
                        continue
                    raw.write(array.tobytes())
                    kept.append(paths[start + i])
                    colour = colour or in_colour
                advance(len(results))
        DECODED.files += len(paths)
        if not kept:
            raise GancliError(f"None of the {len(paths)} image files in '{folder}' could be read; check that they are valid images.")
        channels = 3 if colour else 1
        _write_npy(tmp / "rgb.raw", tmp / "images.npy", len(kept), channels, image_size)
        (tmp / "rgb.raw").unlink()
        relative = [p.relative_to(folder).parts for p in kept]
        class_names: tuple[str, ...] = ()
        if all(len(parts) > 1 for parts in relative):
            class_names = tuple(sorted({parts[0] for parts in relative}))
            index = {name: i for i, name in enumerate(class_names)}
            np.save(tmp / "labels.npy", np.array([index[parts[0]] for parts in relative], dtype=np.int64))
        header = {"format": FORMAT, "source": str(folder.resolve()), "fingerprint": digest, "image_size": image_size,
                  "channels": channels, "count": len(kept), "class_names": list(class_names), "skipped": skipped}  # fmt: skip
        (tmp / "index.json").write_text(json.dumps(header, indent=1) + "\n")
        if where.exists():
            shutil.rmtree(where)  # stale: the folder changed
        os.replace(tmp, where)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result = _read(where, digest)
    assert result is not None
    result.hit = False
    return result


def _write_npy(raw: Path, out: Path, count: int, channels: int, size: int, chunk: int = 4096) -> None:
    """images.npy (count, channels, size, size) from the RGB rows in `raw`, a chunk in memory at a time."""
    rgb_row = 3 * size * size
    with open(raw, "rb") as src, open(out, "wb") as dst:
        np.lib.format.write_array_header_1_0(dst, {"descr": "|u1", "fortran_order": False, "shape": (count, channels, size, size)})
        for start in range(0, count, chunk):
            n = min(chunk, count - start)
            block = np.frombuffer(src.read(n * rgb_row), dtype=np.uint8).reshape(n, 3, size, size)
            dst.write(np.ascontiguousarray(block[:, :channels]).tobytes())


def _decode_all(paths: list[Path], image_size: int, workers: int):
    """(index of the first path, [(uint8 (3, S, S) or None, in colour)]) per chunk of files, in order."""
    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
    if workers <= 1 or len(paths) < POOL_FROM:
        for i, chunk in enumerate(chunks):
            yield i * CHUNK, decode_chunk(chunk, image_size)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for i, results in enumerate(pool.map(decode_chunk, chunks, [image_size] * len(chunks))):
            yield i * CHUNK, results


def decode_chunk(paths: list[Path], image_size: int) -> list[tuple[np.ndarray | None, bool]]:
    """Each file resized (shorter side) and centre-cropped to image_size as uint8 RGB (3, S, S); None where unreadable."""
    from torchvision.transforms import functional as F

    from gancli.images import GREY_MODES, as_8bit, open_image

    results = []
    for path in paths:
        try:
            with open_image(path) as img:
                colour = img.mode not in GREY_MODES
                img = F.center_crop(F.resize(as_8bit(img, "RGB"), image_size), image_size)  # 16-bit scaled, EXIF upright
                results.append((np.asarray(img, dtype=np.uint8).transpose(2, 0, 1), colour))
        except GancliError:  # unreadable, or too large to decode
            results.append((None, False))
    return results
