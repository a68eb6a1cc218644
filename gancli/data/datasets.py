"""Datasets as one uint8 tensor (N, C, H, W) plus labels: named datasets and folders of images.

Everything that touches files or PIL happens here, once, before training; the training loop
only indexes tensors.
"""

from __future__ import annotations

import difflib
import gzip
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gancli.data.images import IMAGE_EXTENSIONS
from gancli.errors import GancliError, UsageError

FOLDER_DEFAULT_IMAGE_SIZE = 64
BUNDLED_MNIST = Path(__file__).parent.parent / "assets" / "mnist"
SYSTEM_DATASETS = Path("/usr/share/datasets")  # where Debian's dataset-* packages install


@dataclass(frozen=True)
class NamedDataset:
    name: str
    title: str
    torchvision_class: str  # in torchvision.datasets; also the folder it downloads into
    image_size: int
    class_names: tuple[str, ...]
    idx_files: bool  # distributed as IDX files (MNIST-style)


NAMED_DATASETS: dict[str, NamedDataset] = {
    d.name: d
    for d in (
        NamedDataset("mnist", "MNIST", "MNIST", 28, tuple("0123456789"), True),
        NamedDataset(
            "fashion-mnist",
            "Fashion-MNIST",
            "FashionMNIST",
            28,
            ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"),
            True,
        ),
        NamedDataset(
            "cifar10",
            "CIFAR-10",
            "CIFAR10",
            32,
            ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
            False,
        ),
    )
}


@dataclass
class ImageDataset:
    """Images as uint8 (N, C, H, W) and, when the data has classes, int64 labels (N,)."""

    images: torch.Tensor  # or a gancli.data.mapped.MappedImages, indexed the same way, for data over the memory budget
    labels: torch.Tensor | None
    class_names: tuple[str, ...]
    description: str  # e.g. "MNIST training split, 60,000 images"
    notices: list[str] = field(default_factory=list)  # things the user should see (fallbacks, skipped files)
    split: str = ""  # "train" when a separate test split exists (named datasets), else ""
    fingerprint: str = ""  # image folders: the files' fingerprint (gancli.data.folder_cache), kept in checkpoints

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]


def default_data_dir() -> Path:
    return Path(os.environ.get("GANCLI_DATA_DIR") or Path.home() / ".cache" / "gancli" / "datasets")


_USER_DATA_DIRS: set[Path] = set()  # folders named by --data-dir in this command


def trust_data_dir(data_dir: Path | None) -> None:
    """The user named `data_dir` (--data-dir): downloads may go there. A data_dir read from a checkpoint
    is only searched, so a file from someone else cannot make gancli create folders or download anywhere."""
    if data_dir is not None:
        _USER_DATA_DIRS.add(Path(data_dir).absolute())


def _download_refusal(data_dir: Path) -> str | None:
    """Why nothing may be downloaded into data_dir, or None when it may."""
    if os.environ.get("GANCLI_OFFLINE"):
        return "downloads are off (GANCLI_OFFLINE)"
    if data_dir.absolute() not in _USER_DATA_DIRS | {default_data_dir().absolute()}:
        return f"gancli downloads only into --data-dir or {default_data_dir()}, not into a folder named by a checkpoint"
    return None


def is_named_dataset(dataset: str) -> bool:
    return dataset in NAMED_DATASETS


def native_image_size(dataset: str) -> int:
    return NAMED_DATASETS[dataset].image_size if dataset in NAMED_DATASETS else FOLDER_DEFAULT_IMAGE_SIZE


def dataset_name(dataset: str) -> str:
    """A named dataset in any case ('MNIST' -> 'mnist'), unless a folder of that name is there; else unchanged."""
    lowered = dataset.lower()
    return lowered if lowered in NAMED_DATASETS and dataset not in NAMED_DATASETS and not Path(dataset).is_dir() else dataset


def check_dataset(dataset: str) -> None:
    """Raise a UsageError unless `dataset` is a known name or an existing folder."""
    if dataset in NAMED_DATASETS:
        return
    path = Path(dataset)
    if path.is_dir():
        return
    if path.exists():
        raise UsageError(f"'{dataset}' is a file; give a folder of images or one of: {', '.join(NAMED_DATASETS)}.")
    close = difflib.get_close_matches(dataset.lower(), NAMED_DATASETS, n=2, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}?" if close else f"use one of: {', '.join(NAMED_DATASETS)}"
    raise UsageError(f"No dataset or folder named '{dataset}'; {hint} (or give a path to a folder of images).")


def load_dataset(dataset: str, image_size: int, data_dir: Path | None = None, download: bool = True, memory_budget: int | None = None,
                 progress=None) -> ImageDataset:
    """Load a named dataset or an image folder, resized once to image_size x image_size.

    A folder whose decoded images exceed `memory_budget` bytes (default: gancli.data.mapped.default_budget
    for the CPU) is read by batch from its cache file instead of held in memory.
    """
    check_dataset(dataset)
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    if dataset in NAMED_DATASETS:
        loaded = _load_named(NAMED_DATASETS[dataset], data_dir, _download_refusal(data_dir) if download else "downloads are off")
    else:
        loaded = load_image_folder(Path(dataset), image_size, memory_budget, progress)
    if loaded.image_size != image_size:
        loaded.images = resize_images(loaded.images, image_size)
    return loaded


def resize_images(images: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Resize uint8 (N, C, H, W) images to size x size (antialiased), in chunks to bound memory."""
    from torchvision.transforms.v2 import functional as F

    out = torch.empty((images.shape[0], images.shape[1], size, size), dtype=torch.uint8)
    for start in range(0, images.shape[0], chunk):
        part = images[start : start + chunk]
        part = F.resize(part, [size], antialias=True)
        out[start : start + chunk] = F.center_crop(part, [size, size])
    return out


def load_test_images(dataset: str, data_dir: Path | None = None) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The test split of a named dataset: uint8 images (N, C, H, W), their labels (N,) and where it was found."""
    spec = NAMED_DATASETS[dataset]
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    if spec.idx_files:
        folders = [data_dir, data_dir / spec.name, data_dir / spec.torchvision_class / "raw", SYSTEM_DATASETS / spec.name]
        if spec.name == "mnist":
            folders.append(BUNDLED_MNIST)
        for folder in folders:
            if _idx_path(folder, "t10k-images-idx3-ubyte") and _idx_path(folder, "t10k-labels-idx1-ubyte"):
                images, labels = read_idx_pair(folder, "t10k")
                return images, labels, f"{spec.title} test split from {folder}"
        raise GancliError(f"The {spec.title} test split (t10k-*-ubyte files) is not in {data_dir}; pass --data-dir.")
    refusal = _download_refusal(data_dir)
    if refusal and not data_dir.is_dir():
        raise GancliError(f"The {spec.title} test split is not in {data_dir} and {refusal}; pass --data-dir.")
    import torchvision

    try:
        ds = getattr(torchvision.datasets, spec.torchvision_class)(root=str(data_dir), train=False, download=refusal is None)
    except Exception as exc:
        raise GancliError(f"The {spec.title} test split is not in {data_dir} and could not be downloaded ({type(exc).__name__}).") from exc
    images = torch.as_tensor(ds.data).permute(0, 3, 1, 2).contiguous()
    return images, torch.as_tensor(ds.targets, dtype=torch.long), f"{spec.title} test split from {data_dir}"


# --- named datasets ---------------------------------------------------------------------------


def _load_named(spec: NamedDataset, data_dir: Path, refusal: str | None) -> ImageDataset:
    if spec.idx_files:
        found = find_idx_split(spec, data_dir)
        if found is not None:
            images, labels, where = found
            return _named(spec, images, labels, f"{spec.title} training split from {where}", split="train")
    elif data_dir.is_dir():  # torchvision's own layout, put there by hand (offline) or by an earlier download
        try:
            return _download_named(spec, data_dir, download=False)
        except Exception:  # not there, or incomplete: torchvision checks its checksums
            pass
    reason = refusal
    if refusal is None:
        try:
            return _download_named(spec, data_dir)
        except Exception as exc:  # offline, blocked, checksum failure: all mean "not available"
            lines = [line.strip(" <>") for line in str(exc).splitlines() if line.strip()]
            reason = f"could not be downloaded ({lines[-1] if lines else type(exc).__name__})"  # torchvision puts the cause last
    if spec.name == "mnist":
        images, labels = read_idx_pair(BUNDLED_MNIST, "t10k")
        loaded = _named(spec, images, labels, "bundled MNIST test split")
        loaded.notices.append(
            f"Full MNIST is not in {data_dir} and {reason}: training on the bundled MNIST test split "
            f"({len(loaded):,} real digits)."
        )
        return loaded
    hint = ""
    if spec.name == "fashion-mnist":
        hint = " Offline, install it with 'apt-get install dataset-fashion-mnist' (found automatically) or pass --data-dir."
    elif spec.name == "cifar10":
        hint = (f" Offline, get cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it into "
                f"{data_dir} (making {data_dir / 'cifar-10-batches-py'}/), or pass --data-dir.")  # fmt: skip
    raise GancliError(f"{spec.title} is not in {data_dir} and {reason}.{hint}")


def _named(spec: NamedDataset, images: torch.Tensor, labels: torch.Tensor, source: str, split: str = "") -> ImageDataset:
    return ImageDataset(images, labels, spec.class_names, f"{source} ({images.shape[0]:,} images)", split=split)


def _download_named(spec: NamedDataset, data_dir: Path, download: bool = True) -> ImageDataset:
    """Through torchvision: downloaded into data_dir, or (download=False) only what is already there."""
    import torchvision

    cls = getattr(torchvision.datasets, spec.torchvision_class)
    if download:
        data_dir.mkdir(parents=True, exist_ok=True)
    ds = cls(root=str(data_dir), train=True, download=download)
    images = torch.as_tensor(ds.data)
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)  # (N, C, H, W)
    labels = torch.as_tensor(ds.targets, dtype=torch.int64)
    return _named(spec, images.contiguous(), labels, f"{spec.title} training split from {data_dir}", split="train")


def find_idx_split(spec: NamedDataset, data_dir: Path) -> tuple[torch.Tensor, torch.Tensor, Path] | None:
    """The training split in IDX files, looked for where users and packages put them."""
    candidates = [
        data_dir,
        data_dir / spec.name,
        data_dir / spec.torchvision_class / "raw",  # torchvision's download layout
        SYSTEM_DATASETS / spec.name,
    ]
    for folder in candidates:
        if _idx_path(folder, "train-images-idx3-ubyte") and _idx_path(folder, "train-labels-idx1-ubyte"):
            images, labels = read_idx_pair(folder, "train")
            return images, labels, folder
    return None


def _idx_path(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def read_idx_pair(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 1, H, W) and labels (N,) from `{split}-images-idx3-ubyte[.gz]` and its labels file."""
    images = read_idx(_idx_path(folder, f"{split}-images-idx3-ubyte"))
    labels = read_idx(_idx_path(folder, f"{split}-labels-idx1-ubyte")).long()
    if images.shape[0] != labels.shape[0]:
        raise GancliError(f"IDX files in {folder} disagree: {images.shape[0]} images but {labels.shape[0]} labels.")
    return images.unsqueeze(1), labels


def read_idx(path: Path | None) -> torch.Tensor:
    """A uint8 IDX file (the MNIST format: big-endian header, then raw bytes), gzip or plain."""
    if path is None:
        raise GancliError("IDX file missing.")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
        zero, dtype, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype != 0x08:
            raise ValueError("not a uint8 IDX file")
        shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
        body = data[4 + 4 * ndim :]
        if len(body) != math.prod(shape):
            raise ValueError(f"it holds {len(body):,} bytes of data where its header says {math.prod(shape):,} (truncated?)")
        return torch.frombuffer(bytearray(body), dtype=torch.uint8).view(*shape)
    except (OSError, ValueError, struct.error, RuntimeError, EOFError, TypeError) as exc:  # EOFError: a truncated .gz
        raise GancliError(f"Cannot read IDX file '{path}': {exc or 'it ends early (truncated)'}; download it again.") from exc


# --- image folders ---------------------------------------------------------------------------


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder`, sorted; symlinked folders are not entered (no loops). One scandir per
    folder: a directory entry knows whether it is a file, so 200,000 photos need no stat each."""
    found, pending = [], [folder]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif entry.name.lower().endswith(IMAGE_EXTENSIONS) and _is_file(entry):
                        found.append(entry.path)
        except PermissionError:
            continue  # an unreadable sub-folder holds nothing to train on
    return [Path(p) for p in sorted(found, key=lambda p: p.split(os.sep))]  # Path's own order, without its slow comparisons


def check_resumed_folder(folder: Path, class_names: tuple[str, ...]) -> None:
    """Before a resumed run decodes the folder its checkpoint names: it must still hold images in the checkpoint's
    classes, so that a checkpoint naming some other folder (/usr/share, say) is refused before a file is read."""
    from gancli.store.files import printable

    paths = list_images(folder)
    if not paths:
        raise GancliError(f"The run's data folder '{printable(folder)}' holds no images now; restore it or pass the data's new place as DATASET.")
    found = {p.relative_to(folder).parts[0] for p in paths if len(p.relative_to(folder).parts) > 1}
    unclassed = any(len(p.relative_to(folder).parts) == 1 for p in paths)
    if (tuple(sorted(found)) if found and not unclassed else ()) != tuple(class_names):
        want = f"{len(class_names)} classes" if class_names else "no classes"
        raise GancliError(f"The folder '{printable(folder)}' does not hold the run's data ({want} in the checkpoint; "
                          f"{len(found)} class folders and {len(paths):,} images there); restore the data or start a new run.")  # fmt: skip


def _is_file(entry: os.DirEntry) -> bool:
    """A file, or a name that cannot be followed (a link loop): listed, so that decoding reports it as unreadable."""
    try:
        return entry.is_file()
    except OSError:
        return True


def load_image_folder(folder: Path, image_size: int, memory_budget: int | None = None, progress=None) -> ImageDataset:
    """Every image under `folder` (recursively), resized and centre-cropped to image_size.

    When every image sits in a first-level sub-folder, those sub-folders are the classes.
    Greyscale-only folders give one channel, anything else three. Decoded once into gancli's
    cache (gancli.data.folder_cache) and read from there while the folder is unchanged: held in memory
    when it fits `memory_budget`, else read by batch from the cache file (gancli.data.mapped).
    """
    import numpy as np

    from gancli.data.folder_cache import decoded_folder
    from gancli.data.mapped import MappedImages, default_budget, format_size

    paths = list_images(folder)
    if not paths:
        raise UsageError(f"No images found in '{folder}' (looked for {', '.join(IMAGE_EXTENSIONS)}).")
    decoded = decoded_folder(folder, paths, image_size, progress=progress)  # progress(total, what): a bar while decoding
    budget = default_budget(torch.device("cpu")) if memory_budget is None else memory_budget
    mapped = decoded.images.nbytes > budget
    if mapped:  # random batches by index from the file: the process holds a batch, not the dataset
        images = MappedImages(decoded.path / "images.npy")
    else:  # resident: a batch is one gather (read, not copied from the mapping, whose pages would count twice)
        images = torch.from_numpy(np.load(decoded.path / "images.npy"))
    labels = torch.from_numpy(decoded.labels) if decoded.labels is not None else None
    class_names = decoded.class_names
    classes = f", {len(class_names)} classes" if class_names else ""
    loaded = ImageDataset(images, labels, class_names, f"image folder '{folder}' ({len(images):,} images{classes})", fingerprint=decoded.digest)
    if decoded.rebuilt:
        loaded.notices.append(f"The cache of '{folder}' was damaged ({decoded.rebuilt}); decoded the images again.")
    if decoded.hit:
        loaded.notices.append(f"Read the {len(images):,} images of '{folder}' decoded earlier (cache {decoded.path}; the folder is unchanged).")
    if mapped:
        loaded.notices.append(f"The images take {format_size(decoded.images.nbytes)}, more than the memory budget of {format_size(budget)} "
                              "(--memory-budget): each batch is read from the cache file, so memory holds a batch, not the dataset.")  # fmt: skip
    if decoded.skipped:
        from gancli.store.files import printable

        names = ", ".join(printable(n) for n in decoded.skipped[:5]) + (f" and {len(decoded.skipped) - 5} more" if len(decoded.skipped) > 5 else "")
        loaded.notices.append(f"Skipped {len(decoded.skipped)} unreadable image file(s) in '{folder}': {names}.")
    return loaded
