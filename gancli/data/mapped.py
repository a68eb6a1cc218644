"""Training images larger than the memory budget: read by index from the folder's .npy cache.

Below the budget a dataset is one resident uint8 tensor (the fastest: a batch is one gather). Above
it, MappedImages stands in for that tensor: `images[index]` reads just those rows with pread, so the
process holds one batch, not the dataset, and the data order, seeds and exact resume are unchanged.
pread rather than mmap because mapped pages count in the process's RSS and the kernel's page cache
does not; every torchrun process reads the same file through the one page cache.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from gancli.errors import GancliError, UsageError

DEFAULT_FRACTION = 0.5  # of the RAM (divided among the torchrun processes of this machine), or of a GPU's free memory
FALLBACK_RAM = 8 * 2**30
_PREADV = getattr(os, "preadv", None)  # Linux, BSDs, macOS 11+; elsewhere a seek and a read
_UNITS = {"": 2**30, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str) -> int:
    """'8G', '500M', '1.5g', '2GB' or a bare number of GiB, in bytes."""
    match = re.fullmatch(r"\s*(\d{1,15}(?:\.\d{0,15})?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise UsageError(f"--memory-budget '{text[:40]}' is not a size; write it like 8G, 500M or 0.5G.")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def default_budget(device: torch.device | None = None) -> int:
    """Half the RAM, shared by the torchrun processes on this machine; on CUDA, half this process's GPU's free memory."""
    if device is not None and device.type == "cuda":
        gpu = int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count()
        free, _total = torch.cuda.mem_get_info(gpu)
        return int(free * DEFAULT_FRACTION)
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): assume a small machine
        ram = FALLBACK_RAM
    return int(ram * DEFAULT_FRACTION / max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1))))


def format_size(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 2**10:.0f} KiB"


class MappedImages:
    """uint8 (N, C, H, W) images in an .npy file, indexed like a tensor: a batch is read when asked for."""

    def __init__(self, path: Path, device: torch.device | str = "cpu"):
        array = np.load(path, mmap_mode="r")  # only to read the header: shape, dtype and where the rows start
        if array.dtype != np.uint8 or array.ndim != 4 or not array.flags.c_contiguous:
            raise ValueError(f"{path} does not hold uint8 (N, C, H, W) images")
        self.path, self.shape, self.offset = Path(path), torch.Size(array.shape), array.offset
        self.row_bytes = int(np.prod(array.shape[1:]))
        self.device = torch.device(device)
        self.dtype = torch.uint8
        self.nbytes = self.row_bytes * self.shape[0]
        del array
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))

    def __len__(self) -> int:
        return self.shape[0]

    def to(self, device) -> MappedImages:
        """The same file, with batches placed on `device` (its own file handle)."""
        return MappedImages(self.path, device)

    def __getitem__(self, index) -> torch.Tensor:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step == 1:
                out = np.empty((max(0, stop - start), *self.shape[1:]), dtype=np.uint8)
                self._read(out, start)
                return self._place(out)
            index = range(start, stop, step)
        if isinstance(index, int):
            return self[[index]][0]
        rows = torch.as_tensor(index).cpu().tolist() if not isinstance(index, range) else list(index)
        out = np.empty((len(rows), *self.shape[1:]), dtype=np.uint8)
        n = len(self)
        for i, row in enumerate(rows):
            if not -n <= row < n:
                raise IndexError(f"image {row} is out of range for {n} images")
            self._read(out[i : i + 1], row % n)
        return self._place(out)

    def _read(self, out: np.ndarray, first_row: int) -> None:
        """Fill `out` (whole rows) from the file, starting at `first_row`."""
        view, done = memoryview(out).cast("B"), 0
        position = self.offset + first_row * self.row_bytes
        while done < len(view):  # a read may return fewer bytes than asked for
            if _PREADV is not None:
                read = _PREADV(self._fd, [view[done:]], position + done)
            else:
                os.lseek(self._fd, position + done, os.SEEK_SET)
                chunk = os.read(self._fd, len(view) - done)
                view[done : done + len(chunk)] = chunk
                read = len(chunk)
            if read == 0:
                raise GancliError(f"The cache file {self.path} is shorter than its header says (truncated?); delete its folder and run again to decode the images anew.")
            done += read

    def _place(self, out: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(out)
        return tensor if self.device.type == "cpu" else tensor.to(self.device)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)
