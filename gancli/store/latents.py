"""A latent as a file: the point in a generator's latent space that draws one image, written by `gancli project`.

A latent file is data, checked as checkpoints are: a safetensors file whose metadata names its format, the latent
space ("z", or "w+" for style-based generators), the run it belongs to (a fingerprint of the run's fixed settings),
the class, the projection's final losses, and SHA-256 checksums of the tensors and of the metadata.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gancli.config import TrainConfig
from gancli.errors import GancliError, UsageError

FORMAT = "gancli-latent/1"
SUFFIX = ".latent.safetensors"
SPACES = ("z", "w+")
MAX_ELEMENTS = 1 << 20  # a latent's numbers; the largest real one (w+ at 512 px) is ~8,000


@dataclass
class Latent:
    """One image's latent: `value` is (latent_dim,) in space "z", (styles, style_dim) in "w+"."""

    value: torch.Tensor
    space: str
    fingerprint: str
    label: int | None = None
    run: str = ""  # the run it was projected with, as given then (for messages)
    source: str = ""  # the image it reproduces
    losses: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def name(self) -> str:
        """The file's name without .latent.safetensors: `sample --latent --outdir` names its PNG after it."""
        if self.path is None:
            return Path(self.source).stem or "latent"
        name = self.path.name
        return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else self.path.stem


def fingerprint(config: TrainConfig) -> str:
    """What identifies a run's latent space: its settings that a resume cannot change (architecture, sizes,
    widths, classes, data, seed), hashed. Two runs with the same fingerprint draw from the same space."""
    from dataclasses import fields

    # fields at their default are left out, so that a field added later (at its default) keeps every fingerprint
    fixed = {f.name: getattr(config, f.name) for f in fields(config) if f.metadata["option"].resume == "fixed" and getattr(config, f.name) != f.default}
    return hashlib.sha256(json.dumps(fixed, sort_keys=True, default=str).encode()).hexdigest()[:16]


def is_latent_file(path: Path) -> bool:
    return Path(path).name.endswith(SUFFIX)


def save_latent(path: Path, latent: Latent) -> None:
    """Write one latent file atomically."""
    from safetensors.torch import save

    from gancli.store.checkpoints import _digest, _metadata_digest
    from gancli.store.files import replaced

    tensors = {"latent": latent.value.detach().float().contiguous().cpu()}
    if latent.label is not None:
        tensors["label"] = torch.tensor([latent.label], dtype=torch.int64)
    metadata = {"format": FORMAT, "space": latent.space, "fingerprint": latent.fingerprint, "run": latent.run, "source": latent.source,
                "losses": json.dumps(latent.losses, sort_keys=True)}  # fmt: skip
    metadata["checksum.tensors"] = _digest(tensors, sorted(tensors))
    metadata["checksum.metadata"] = _metadata_digest(metadata)
    with replaced(Path(path), "latent") as tmp:
        tmp.write_bytes(save(tensors, metadata=metadata))


def load_latent(path: Path) -> Latent:
    """Read and check one latent file; a GancliError names the file and what is wrong with it."""
    from safetensors import safe_open

    from gancli.store.checkpoints import _digest, _metadata_digest

    path = Path(path)
    if path.exists() and not path.is_file():
        raise UsageError(f"'{path}' is not a regular file (a folder, device or pipe); give a .latent.safetensors file that gancli project wrote.")
    if not path.is_file():
        raise UsageError(f"Latent file '{path}' does not exist; give a .latent.safetensors file that gancli project wrote.")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            keys = set(f.keys())
            if not keys <= {"latent", "label"} or "latent" not in keys:
                raise GancliError(f"'{path}' holds tensors a latent file does not have ({', '.join(sorted(keys))[:80]}).")
            shapes = {k: f.get_slice(k).get_shape() for k in keys}
            if math.prod(shapes["latent"]) > MAX_ELEMENTS or shapes.get("label", [1]) != [1]:
                raise GancliError(f"'{path}' has tensors of impossible shapes for a latent ({shapes}).")
            tensors = {k: f.get_tensor(k) for k in keys}
    except GancliError:
        raise
    except Exception as exc:
        raise GancliError(f"'{path}' is not a readable safetensors file ({str(exc).splitlines()[0][:120]}); it may be truncated or corrupt.") from None
    if metadata.get("format") != FORMAT:
        raise GancliError(f"'{path}' is not a gancli latent file (its format is {metadata.get('format', 'missing')!r}, not {FORMAT!r}).")
    if metadata.get("checksum.metadata") != _metadata_digest(metadata) or metadata.get("checksum.tensors") != _digest(tensors, sorted(tensors)):
        raise GancliError(f"'{path}' is damaged: it does not match its checksums.")
    value, label = tensors["latent"], tensors.get("label")
    space = metadata.get("space", "")
    if space not in SPACES or value.dtype != torch.float32 or value.dim() != (1 if space == "z" else 2):
        raise GancliError(f"'{path}' holds a {tuple(value.shape)} {value.dtype} latent in space {space[:20]!r}; expected float32, z (N,) or w+ (L, N).")
    if not torch.isfinite(value).all():
        raise GancliError(f"'{path}' holds non-finite numbers; project the image again.")
    if label is not None and (label.dtype != torch.int64 or not 0 <= int(label[0]) < 100_000):
        raise GancliError(f"'{path}' holds an invalid class ({label.tolist()}).")
    try:
        losses = json.loads(metadata.get("losses", "{}"))
    except ValueError:
        losses = {}
    return Latent(value, space, metadata.get("fingerprint", ""), None if label is None else int(label[0]), metadata.get("run", ""),
                  metadata.get("source", ""), losses if isinstance(losses, dict) else {}, path)  # fmt: skip


def latent_files(items: list[Path]) -> list[Path]:
    """Latent files from files and folders (a folder: its *.latent.safetensors, sorted)."""
    found = []
    for item in map(Path, items):
        if item.is_dir():
            inside = sorted(p for p in item.iterdir() if is_latent_file(p))
            if not inside:
                raise UsageError(f"'{item}' holds no {SUFFIX} files; give latent files or a folder of them.")
            found += inside
        else:
            found.append(item)
    return found


def check_belongs(latent: Latent, config: TrainConfig, run: str, force: bool = False) -> None:
    """Refuse a latent projected with another run (naming both), unless `force`; the shape must fit regardless."""
    if latent.fingerprint != fingerprint(config) and not force:
        raise UsageError(f"'{latent.path}' was projected with another run ({latent.run or 'unknown'}, fingerprint {latent.fingerprint[:16] or '-'}) "
                         f"than '{run}' (fingerprint {fingerprint(config)}); project the image with this run, or pass --force.")  # fmt: skip
