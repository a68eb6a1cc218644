"""Image folders decoded once: a uint8 .npy per folder and image size, reused while the folder is unchanged.

The first run on a folder decodes every file (on all cores for large folders) into
CACHE/data/<folder key>-<size>px/images.npy with labels.npy and index.json beside it; later runs
and resumes read that file instead. index.json names the source folder, the fingerprint of its file
list (relative paths, sizes, inodes, modes, modification and change times), the size, channels,
classes and the files that could not be read. A changed fingerprint (a file added, removed,
rewritten, renamed or made readable) means a fresh decode. Every cache file is checked as a
checkpoint is (regular file, type, shape, dtype, ranges) before it is used: anything wrong means
the folder is decoded again, with a notice. One process decodes a folder at a time (a lock file).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gancli.errors import GancliError

FORMAT = 2  # 2: the fingerprint covers inodes, modes and change times
POOL_FROM = 256  # fewer files decode faster in this process than a pool starts
CHUNK = 64  # files per task handed to a pool worker


@dataclass
class DecodeCount:
    """How many files this process decoded into caches: tests check that a cache hit decodes none."""

    files: int = 0


DECODED = DecodeCount()


def cache_root() -> Path:
    return cache_home() / "data"


def cache_home() -> Path:
    """GANCLI_CACHE_DIR or ~/.cache/gancli, refused in one line when it cannot be a folder."""
    from gancli.errors import UsageError

    root = Path(os.environ.get("GANCLI_CACHE_DIR") or Path.home() / ".cache" / "gancli")
    existing = root
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or (existing == root and not os.access(root, os.W_OK | os.X_OK)):
        what = "GANCLI_CACHE_DIR" if os.environ.get("GANCLI_CACHE_DIR") else "gancli's cache folder"
        raise UsageError(f"{what} '{root}' is not a writable folder ('{existing}' is in the way); point GANCLI_CACHE_DIR at a folder you can write.")
    return root


def fingerprint(folder: Path, paths: list[Path]) -> str:
    """What the cache is valid for: each file's name, size, inode, mode, mtime and ctime (chmod, touch -r
    and renames all change the ctime, so none of them goes unnoticed)."""
    h = hashlib.sha256(f"{FORMAT}".encode())
    for path in paths:
        try:
            info = path.stat()
            line = f"{info.st_size}|{info.st_ino}|{info.st_mode}|{info.st_mtime_ns}|{info.st_ctime_ns}"
        except OSError as exc:  # gone, a link loop, unreadable: part of the state too
            line = f"error {exc.errno}"
        h.update(f"{path.relative_to(folder).as_posix()}|{line}\n".encode("utf-8", "surrogateescape"))
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
    digest: str = ""  # the folder's fingerprint: checkpoints keep it, so a resume can tell the data changed
    rebuilt: str | None = None  # why a cache that was there was decoded again (damaged), or None


def decoded_folder(folder: Path, paths: list[Path], image_size: int, workers: int | None = None, progress=None) -> Decoded:
    """The folder's images at image_size from the cache, decoding them first when it is missing, stale or damaged."""
    from gancli.store.files import remove_orphans

    where = cache_path(folder, image_size)
    digest = fingerprint(folder, paths)
    cached, problem = _read(where, digest, image_size)
    if cached is not None:
        return cached
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GancliError(f"Cannot create gancli's cache folder '{where.parent}' ({exc.strerror or exc}); set GANCLI_CACHE_DIR to a folder you can write.") from exc
    with _decode_lock(where):  # one decoder per folder and size; the others wait, then read its result
        remove_orphans(where.parent, depth=0)  # temporary folders of decodes that were killed
        _remove_legacy_temporaries(where)
        cached, problem_now = _read(where, digest, image_size)
        if cached is not None:
            return cached
        built = _build(folder, paths, image_size, where, digest, workers, progress or silent_work)
    built.rebuilt = problem if problem and problem_now else None
    return built


LEGACY_AGE_S = 86_400  # older gancli named its temporary folders without a PID: gone after a day, surely dead


def _remove_legacy_temporaries(where: Path) -> None:
    """`.NAME.XXXXXXXX` folders an older gancli's killed decode of this folder left (no PID to ask: by age)."""
    import re
    import time

    pattern = re.compile(rf"^\.{re.escape(where.name)}\.[a-z0-9_]{{8}}$")
    for entry in os.scandir(where.parent):
        with contextlib.suppress(OSError):
            if pattern.match(entry.name) and entry.is_dir(follow_symlinks=False) and entry.stat().st_mtime < time.time() - LEGACY_AGE_S:
                shutil.rmtree(entry.path)


@contextlib.contextmanager
def _decode_lock(where: Path):
    import fcntl

    lock = where.parent.parent / "locks" / f"{where.name}.lock"  # beside data/, so data/ holds only caches
    try:
        lock.parent.mkdir(exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        raise GancliError(f"Cannot use the lock file '{lock}' ({exc.strerror or exc}); remove it (it must be a plain file) and run again.") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise GancliError(f"The lock file '{lock}' is not a plain file; remove it and run again.")
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _regular(path: Path) -> bool:
    """A regular file (not a FIFO, device or link, which could block, or point anywhere)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) of an .npy file, from its header alone; ValueError when it is not one."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
        offset = f.tell()
    if fortran:
        raise ValueError("Fortran order")
    return shape, dtype, offset


def _read(where: Path, expected: str, image_size: int) -> tuple[Decoded | None, str | None]:
    """(the cache, None) when it is whole and current; (None, why) when it is damaged; (None, None) when missing or stale."""
    index_file, images_file, labels_file = where / "index.json", where / "images.npy", where / "labels.npy"
    if not os.path.lexists(index_file):
        return None, None
    try:
        if not _regular(index_file) or os.path.getsize(index_file) > 2**26:
            raise ValueError("index.json is not a plain file of a sensible size")
        index = json.loads(index_file.read_text())
        if not isinstance(index, dict):
            raise ValueError("index.json is not an object")
        if index.get("format") != FORMAT or index.get("fingerprint") != expected:
            return None, None  # an older format, or the folder changed: decoded again, nothing to report
        count, channels, names, skipped = index.get("count"), index.get("channels"), index.get("class_names"), index.get("skipped")
        if type(count) is not int or count < 1 or channels not in (1, 3) or index.get("image_size") != image_size:
            raise ValueError("index.json has a wrong count, channels or image_size")
        if not isinstance(names, list) or not all(_plain_name(n) for n in names) or len(set(names)) != len(names):
            raise ValueError("index.json's class_names are not distinct plain names")
        if not isinstance(skipped, list) or not all(isinstance(n, str) for n in skipped):
            raise ValueError("index.json's skipped is not a list of names")
        if not _regular(images_file):
            raise ValueError("images.npy is missing or not a plain file")
        shape, dtype, offset = _npy_header(images_file)
        if shape != (count, channels, image_size, image_size) or dtype != np.uint8:
            raise ValueError(f"images.npy holds {shape} {dtype}, not the index's ({count}, {channels}, {image_size}, {image_size}) uint8")
        if os.path.getsize(images_file) < offset + count * channels * image_size * image_size:
            raise ValueError("images.npy is shorter than its header says")
        labels = None
        if names:
            if not _regular(labels_file):
                raise ValueError("labels.npy is missing or not a plain file")
            shape, dtype, _ = _npy_header(labels_file)
            if shape != (count,) or dtype != np.int64:
                raise ValueError(f"labels.npy holds {shape} {dtype}, not ({count},) int64")
            labels = np.load(labels_file)
            if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
                raise ValueError("labels.npy has labels outside the classes")
        elif os.path.lexists(labels_file):
            raise ValueError("labels.npy is there but the index names no classes")
        images = np.load(images_file, mmap_mode="r")
    except (OSError, ValueError, EOFError, SyntaxError, TypeError) as exc:  # damaged: decoded again, with a notice
        return None, str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    decoded = Decoded(images, labels, tuple(names), skipped, where, hit=True, digest=expected)
    return decoded, None


def _plain_name(name) -> bool:
    """A class name that can be a folder name and printed as it is: no slashes, no control characters."""
    from gancli.config import check_component

    if not isinstance(name, str) or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return False
    try:
        check_component(name)
    except GancliError:
        return False
    return True


@contextlib.contextmanager
def silent_work(total: float, what: str):
    """The progress protocol, saying nothing: `with progress(total, what) as advance: advance(done)`."""
    yield lambda amount=1: None


def _build(folder: Path, paths: list[Path], image_size: int, where: Path, digest: str, workers: int | None, work) -> Decoded:
    from gancli.store.files import publish_folder, temp_folder

    try:
        tmp = temp_folder(where)
    except OSError as exc:
        raise GancliError(f"Cannot write to gancli's cache folder '{where.parent}' ({exc.strerror or exc}); set GANCLI_CACHE_DIR to a folder you can write.") from exc
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
            bad = next((n for n in class_names if not _plain_name(n)), None)
            if bad is not None:
                from gancli.store.files import printable

                raise GancliError(f"The class folder '{printable(bad)}' in '{printable(folder)}' has a control character in its name; rename it.")
            index = {name: i for i, name in enumerate(class_names)}
            np.save(tmp / "labels.npy", np.array([index[parts[0]] for parts in relative], dtype=np.int64))
        header = {"format": FORMAT, "source": str(folder.resolve()), "fingerprint": digest, "image_size": image_size,
                  "channels": channels, "count": len(kept), "class_names": list(class_names), "skipped": skipped}  # fmt: skip
        (tmp / "index.json").write_text(json.dumps(header, indent=1) + "\n")
        publish_folder(tmp, where)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise GancliError(f"Cannot write the decoded images to '{where}' ({exc.strerror or exc}); free some space or set GANCLI_CACHE_DIR to another folder.") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result, problem = _read(where, digest, image_size)
    if result is None:
        raise GancliError(f"The decoded images in '{where}' could not be read back ({problem}); run again.")
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

    from gancli.data.images import GREY_MODES, as_8bit, open_image

    results = []
    for path in paths:
        try:
            with open_image(path) as img:
                colour = img.mode not in GREY_MODES
                img = F.center_crop(F.resize(as_8bit(img, "RGB", fit=image_size), image_size), image_size)  # 16-bit scaled, EXIF upright
                results.append((np.asarray(img, dtype=np.uint8).transpose(2, 0, 1), colour))
        except GancliError:  # unreadable, or too large to decode
            results.append((None, False))
    return results
