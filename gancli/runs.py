"""Run directories: where a training run keeps its files, and finding checkpoints in them."""

from __future__ import annotations

import time
from pathlib import Path

from gancli.errors import GancliError, UsageError

RUNS_ROOT = Path("runs")
CHECKPOINTS = "checkpoints"
LAST = "last.safetensors"


def default_run_dir(dataset: str, arch: str) -> Path:
    name = Path(dataset).name if Path(dataset).is_dir() else dataset
    return RUNS_ROOT / f"{name}-{arch}-{time.strftime('%Y%m%d-%H%M%S')}"


def last_checkpoint_path(run_dir: Path) -> Path:
    return run_dir / CHECKPOINTS / LAST


def resolve_checkpoint(path: Path | None, kind: str = "generator") -> Path:
    """A checkpoint file from a file, a run directory or, with None, the newest run of `kind` under runs/."""
    if path is None:
        return newest_checkpoint(RUNS_ROOT, kind)
    path = Path(path)
    if path.is_dir():
        last = last_checkpoint_path(path)
        if last.is_file():
            return last
        if path.name == CHECKPOINTS and (path / LAST).is_file():
            return path / LAST
        raise UsageError(f"'{path}' holds no {CHECKPOINTS}/{LAST}; give a checkpoint file or a run directory.")
    if not path.exists():
        raise UsageError(f"Checkpoint '{path}' does not exist; give a .safetensors file or a run directory.")
    return path


def newest_checkpoint(root: Path, kind: str = "generator", dataset: str | None = None) -> Path:
    """The newest last.safetensors under root/*/checkpoints/ whose model is a `kind` ("generator", "upscaler",
    "classifier"), trained on `dataset` when one is given."""
    candidates = sorted(root.glob(f"*/{CHECKPOINTS}/{LAST}") if root.is_dir() else [], key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        if checkpoint_kind(path) == kind and (dataset is None or checkpoint_dataset(path) == dataset):
            return path
    if kind == "classifier":
        raise GancliError(
            f"No classifier trained on {dataset} under '{root}/'; train one with 'gancli train {dataset} --arch classifier' "
            "(about a minute on a CPU), pass --classifier, or use --extractor inception."
        )
    if kind == "upscaler":
        raise GancliError(f"No trained upscaler runs under '{root}/'; train one with 'gancli train mnist --arch srcnn' or pass --model.")
    raise GancliError(f"No trained runs under '{root}/'; train one with 'gancli train mnist' or pass --checkpoint.")


def checkpoint_kind(path: Path) -> str | None:
    """"generator" or "upscaler" for a readable gancli checkpoint, None otherwise."""
    import json

    from gancli.checkpoints import read_metadata
    from gancli.models import ARCHITECTURES

    try:
        arch = json.loads(read_metadata(path)["config"]).get("arch", "")
    except (GancliError, ValueError):
        return None
    return ARCHITECTURES[arch].kind if arch in ARCHITECTURES else None


def checkpoint_dataset(path: Path) -> str | None:
    import json

    from gancli.checkpoints import read_metadata

    try:
        return json.loads(read_metadata(path)["config"]).get("dataset")
    except (GancliError, ValueError, KeyError):
        return None


def run_dir_of(checkpoint: Path) -> Path:
    """The run directory a checkpoint belongs to (runs/x/checkpoints/last.safetensors -> runs/x)."""
    return checkpoint.parent.parent if checkpoint.parent.name == CHECKPOINTS else checkpoint.parent
