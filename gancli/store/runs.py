"""Run directories: the one place that knows a run's file names, and finding checkpoints in runs.

    runs/<dataset>-<arch>-<time>/
      config.json  metrics.csv  metrics.png  progress.gif  eval.json
      samples/step_000200.png
      checkpoints/last.safetensors  best.safetensors  step_001000.safetensors
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path

from gancli.errors import GancliError, UsageError

RUNS_ROOT = Path("runs")
CHECKPOINTS = "checkpoints"
LAST = "last.safetensors"
BEST = "best.safetensors"  # the checkpoint with the best held-out metric, for tasks with a best_metric


@dataclass(frozen=True)
class Run:
    """The files of one run directory."""

    root: Path

    config = property(lambda self: self.root / "config.json")  # every setting of the run
    metrics = property(lambda self: self.root / "metrics.csv")  # a row per --sample-every steps
    metrics_plot = property(lambda self: self.root / "metrics.png")
    progress_gif = property(lambda self: self.root / "progress.gif")
    evaluations = property(lambda self: self.root / "eval.json")  # a record per `gancli eval`
    samples = property(lambda self: self.root / "samples")
    checkpoints = property(lambda self: self.root / CHECKPOINTS)
    last = property(lambda self: self.checkpoints / LAST)
    best = property(lambda self: self.checkpoints / BEST)

    def sample(self, step: int) -> Path:
        return self.samples / f"step_{step:06d}.png"

    def sample_grids(self) -> list[Path]:
        return sorted(self.samples.glob("step_*.png"))

    def periodic(self, step: int) -> Path:
        return self.checkpoints / f"step_{step:06d}.safetensors"

    def prune_periodic(self, keep: int | None) -> None:
        """Keep only the newest `keep` step_*.safetensors (None or 0: keep all)."""
        if keep:
            for old in sorted(self.checkpoints.glob("step_*.safetensors"))[:-keep]:
                old.unlink(missing_ok=True)


def default_run_dir(dataset: str, arch: str) -> Path:
    """runs/<dataset>-<arch>-<time>, with -2, -3, ... when that name is taken (two runs started in one second)."""
    name = Path(dataset).name if Path(dataset).is_dir() else dataset
    base = RUNS_ROOT / f"{name}-{arch}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


RUN_FILES = ("config.json", "metrics.csv", CHECKPOINTS)  # a folder holding any of these holds a run
RUN_MARKER = ".lock"  # every run gancli trains holds its lock file (RunLock): the sign that a folder is gancli's


def holds_run(folder: Path) -> bool:
    return any(os.path.lexists(Path(folder) / name) for name in RUN_FILES)


def is_gancli_run(folder: Path) -> bool:
    """The folder was made by gancli train (its run marker is there), not merely one that holds a config.json."""
    marker = Path(folder) / RUN_MARKER
    return marker.is_file() and not marker.is_symlink()


def abandoned_run(folder: Path) -> bool:
    """A gancli run stopped before its first checkpoint: nothing to resume, so a new run may take its place."""
    folder = Path(folder)
    return is_gancli_run(folder) and not any(Run(folder).checkpoints.glob("*.safetensors"))


def started_as(folder: Path) -> str:
    """The command that would start the run in `folder` again, from its config.json (a generic one when unreadable)."""
    import json

    try:
        config = json.loads((Path(folder) / "config.json").read_text())
        dataset, arch = str(config["dataset"]), str(config["arch"])
    except (OSError, ValueError, KeyError, TypeError):
        dataset, arch = "DATASET", "ARCH"
    return f"gancli train {dataset} --arch {arch} --outdir {folder}"


class RunLock:
    """An exclusive lock on a run directory for as long as a training writes to it.

    filelock on run/.lock (flock on Unix, msvcrt on Windows): a second training into the same folder
    is refused, and a crashed or killed one leaves nothing stuck (the system drops the lock with the
    process). The file stays: it marks the folder as a gancli run.
    """

    def __init__(self, root: Path):
        self.path = Path(root) / RUN_MARKER
        self.lock = None

    def __enter__(self) -> "RunLock":
        from filelock import FileLock, Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_symlink() or (self.path.exists() and not self.path.is_file()):
            raise UsageError(f"'{self.path}' is not a plain file (a link or a folder); remove it and run again.")
        self.lock = FileLock(self.path, timeout=0, thread_local=False, is_singleton=False)
        try:
            self.lock.acquire()
        except Timeout:
            raise UsageError(f"Another gancli train is writing to '{self.path.parent}'; wait for it to end or choose another --outdir.") from None
        return self

    def check_free(self) -> None:
        """Refuse now, in one line, when another training holds the lock (the folder may not exist yet)."""
        if self.path.parent.is_dir() and self.path.is_file():
            with self:
                pass

    def __exit__(self, *exc) -> None:
        if self.lock is not None:
            self.lock.release()  # the file stays (removing it would race a waiting run)


def last_checkpoint_path(run_dir: Path) -> Path:
    return Run(Path(run_dir)).last


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
        if abandoned_run(path):
            raise UsageError(f"'{path}' holds a run that stopped before its first checkpoint, so there is nothing to resume or sample; "
                             f"start it again with: {started_as(path)}")  # fmt: skip
        raise UsageError(f"'{path}' holds no {CHECKPOINTS}/{LAST}; give a checkpoint file or a run directory.")
    if not path.exists():
        raise UsageError(f"Checkpoint '{path}' does not exist; give a .safetensors file or a run directory.")
    return path


def newest_checkpoint(root: Path, kind: str = "generator", dataset: str | None = None) -> Path:
    """The newest last.safetensors under root/*/checkpoints/ whose model is a `kind` ("generator", "upscaler",
    "classifier"), trained on `dataset` when one is given."""
    from gancli.store.checkpoints import read_header

    candidates = sorted(root.glob(f"*/{CHECKPOINTS}/{LAST}") if root.is_dir() else [], key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        try:
            header = read_header(path)
        except GancliError:
            continue  # unreadable or foreign: not a candidate
        if header.kind == kind and (dataset is None or header.config.dataset == dataset):
            return path
    from gancli.models import KINDS

    raise GancliError(KINDS[kind].missing.format(root=root, dataset=dataset))


def best_classifier(root: Path, dataset: str) -> Path:
    """The most accurate classifier checkpoint trained on `dataset` under root/*/checkpoints/ (best, or last)."""
    from gancli.store.checkpoints import read_header

    scored = []
    for path in sorted(root.glob(f"*/{CHECKPOINTS}/*.safetensors")) if root.is_dir() else []:
        try:
            header = read_header(path)
        except GancliError:
            continue
        if header.kind == "classifier" and header.config.dataset == dataset:
            scored.append((header.score("accuracy") or -1.0, path.stat().st_mtime, path))
    if not scored:
        return newest_checkpoint(root, "classifier", dataset)  # says how to get one
    return max(scored)[2]


def run_dir_of(checkpoint: Path) -> Path:
    """The run directory a checkpoint belongs to (runs/x/checkpoints/last.safetensors -> runs/x)."""
    return checkpoint.parent.parent if checkpoint.parent.name == CHECKPOINTS else checkpoint.parent


class MetricsLog:
    """metrics.csv, one row per --sample-every steps; resuming drops rows past the resumed step.

    The file is rewritten atomically at the start (a kill then leaves the old file or the new one),
    then rows are appended.
    """

    def __init__(self, path: Path, columns: tuple[str, ...], truncate_after: int):
        from gancli.store.files import atomic_path

        self.path, self.columns = path, columns
        rows = []
        if path.exists() and truncate_after > 0:
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= truncate_after]
        with atomic_path(path, "--out") as tmp, tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    def append(self, row: dict) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns).writerow({k: _fmt(row.get(k)) for k in self.columns})


def _fmt(value) -> str:
    if value is None:  # not measured at this row (e.g. FID between --eval-every steps)
        return ""
    return str(value) if isinstance(value, int) else f"{value:.6g}"
