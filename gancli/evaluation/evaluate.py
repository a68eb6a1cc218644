"""`gancli eval`: generated images against the dataset's real ones, in an extractor's feature space.

The real side has two parts: a reference set (from the images the GAN trained on) and a
held-out set (the test split, or for data without one the other half). Scoring the held-out
real images exactly like generated ones gives the floor a perfect generator would reach at this
sample size. Reference features and the floor are cached per dataset, size and extractor.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from gancli.evaluation import metrics
from gancli.config import TrainConfig
from gancli.data.datasets import is_named_dataset, load_dataset, load_test_images, resize_images
from gancli.errors import UsageError
from gancli.models import get_architecture

DEFAULT_N = 10_000
SCORE_NAMES = ("FID", "KID", "precision", "recall")  # the metrics every extractor gives


def cache_dir() -> Path:
    return Path(os.environ.get("GANCLI_CACHE_DIR") or Path.home() / ".cache" / "gancli") / "eval"


@dataclass
class RealFeatures:
    reference: torch.Tensor  # (N_ref, D)
    floor: dict[str, float]  # held-out real images scored against the reference
    description: str


@dataclass
class Evaluation:
    scores: dict[str, float]
    floor: dict[str, float]
    extractor: str
    n: int
    reference: str
    seconds: float
    saved: Path | None = None  # the eval.json this evaluation was appended to (None: not saved, see `unsaved`)
    unsaved: str = ""  # why it could not be saved
    moved: Path | None = None  # where an eval.json that was not a list of evaluations was kept


def real_images(config: TrainConfig, n: int, data_dir: Path | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, str]:
    """(reference, floor_a, floor_b, description), all at the generator's size.

    The reference is as many real images as generated (n, or the whole pool when it is smaller); the
    real-data floor scores floor_a against floor_b: the training images against the held-out test split,
    or, for data without one, two disjoint halves of the pool.
    """
    dataset = load_dataset(config.dataset, config.image_size, data_dir)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))
    reference = dataset.images[order[:n]]
    if dataset.split == "train":  # a separate test split exists: hold it out whole
        test, _, _ = load_test_images(config.dataset, data_dir)
        if test.shape[-1] != config.image_size:
            test = resize_images(test, config.image_size)
        floor_a, floor_b = reference, test[:n]
        description = f"{len(reference):,} training images; floor: them vs {len(floor_b):,} test images"
    else:  # one pool (the bundled MNIST split, a folder): the floor compares two disjoint halves
        half = min(n, len(dataset) // 2)
        floor_a, floor_b = dataset.images[order[:half]], dataset.images[order[half : 2 * half]]
        description = f"{len(reference):,} images of {dataset.description}; floor: two disjoint halves of {half:,}"
    if len(floor_b) < 2:
        raise UsageError(f"'{config.dataset}' has {len(dataset)} images: too few to evaluate against; use at least 4.")
    return reference, floor_a, floor_b, description


def score(reference: torch.Tensor, generated: torch.Tensor) -> dict[str, float]:
    kid_mean, kid_std = metrics.kid(reference, generated)
    precision, recall = metrics.precision_recall(reference, generated)
    return {"FID": metrics.fid(reference, generated), "KID": kid_mean, "KID_std": kid_std, "precision": precision, "recall": recall}


def real_features(config: TrainConfig, extractor, n: int, data_dir: Path | None) -> RealFeatures:
    """Reference features and the real-data floor, from the cache when this exact set was scored before."""
    from safetensors.torch import load_file, save_file

    cached = is_named_dataset(config.dataset)  # folders can change under us: always recomputed
    path = cache_dir() / f"{config.dataset}-{config.image_size}px-{extractor.name}-n{n}-v3.safetensors"  # v2: reference of n; v3: class_variety floor
    if cached and path.is_file():
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata()
            return RealFeatures(load_file(str(path))["reference"], json.loads(meta["floor"]), meta["description"] + " (cached)")
        except Exception:
            pass  # a damaged cache entry is recomputed
    reference, floor_a, floor_b, description = real_images(config, n, Path(data_dir) if data_dir else None)
    ref_features, _ = extractor(reference)
    a_features = ref_features if floor_a is reference else extractor(floor_a)[0]
    held_features, held_classes = extractor(floor_b)
    floor = score(a_features, held_features)
    if held_classes is not None:
        floor |= metrics.class_coverage(held_classes, extractor.num_classes)
        floor["class_variety"] = metrics.class_variety(a_features, extractor.classify(a_features), held_features, held_classes)
    if not cached:
        return RealFeatures(ref_features, floor, description)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file({"reference": ref_features.contiguous()}, str(tmp), metadata={"floor": json.dumps(floor), "description": description})
        tmp.replace(path)
    except OSError:
        pass  # a read-only cache only costs time
    return RealFeatures(ref_features, floor, description)


def generated_features(generator, config: TrainConfig, extractor, n: int, seed: int, device, advance=None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Features, predicted classes and requested classes of n generated images, streamed in batches."""
    from gancli.use.sampling import generate, stream_labels

    asked = stream_labels(config, n, None) if get_architecture(config.arch).conditional else None
    feats, classes = [], []
    for batch in generate(generator, config, n, seed, device, asked, advance):
        f, c = extractor(batch)
        feats.append(f)
        if c is not None:
            classes.append(c)
    return torch.cat(feats), (torch.cat(classes) if classes else None), (asked[0:n] if asked is not None else None)


def evaluate(generator, config: TrainConfig, extractor, n: int = DEFAULT_N, seed: int = 0, device=None, data_dir=None, advance=None) -> Evaluation:
    started = time.perf_counter()
    generator.eval()
    real = real_features(config, extractor, n, data_dir)
    fake, predicted, asked = generated_features(generator, config, extractor, n, seed, device, advance)
    scores = score(real.reference, fake)
    if predicted is not None and extractor.num_classes >= 2:
        scores |= metrics.class_coverage(predicted, extractor.num_classes)
        grouped = asked if asked is not None else predicted  # a conditional model: the class it was asked for
        scores["class_variety"] = metrics.class_variety(real.reference, extractor.classify(real.reference), fake, grouped)
        if asked is not None:
            scores["class_accuracy"] = float((predicted == asked).float().mean())
    floor = dict(real.floor)
    if "class_accuracy" in scores and getattr(extractor, "accuracy", None) is not None:
        floor["class_accuracy"] = extractor.accuracy  # real images the classifier never saw: what a generator can reach
    return Evaluation(scores, floor, extractor.identity, n, real.description, time.perf_counter() - started)


def metric_text(name: str, value: float, config: TrainConfig) -> str:
    """A score as `gancli eval` prints it."""
    if name == "class_variety":
        return f"{value:.2f}x"
    if name == "classes_covered":
        return f"{value:.0f}/{config.num_classes}"
    if name == "KID":
        return f"{value:.3f}"  # the raw unbiased MMD^2 (not x 1000): classifier features make it large
    return f"{value:.3f}" if name != "FID" else f"{value:.2f}"


def append_record(path: Path, record: dict) -> Path | None:
    """Add one evaluation to a run's eval.json (a list, oldest first), atomically.

    A file that is not such a list is kept, renamed eval.json.unreadable-<time>, never silently
    replaced; returns where it went (None when nothing was moved).
    """
    import time

    from gancli.store.files import write_text

    records, moved = [], None
    if path.is_file() or path.is_symlink():
        try:
            records = json.loads(path.read_text())
        except (ValueError, OSError):
            records = None
        if not isinstance(records, list):
            moved = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
            path.rename(moved)
            records = []
    records.append(record)
    write_text(path, json.dumps(records, indent=1, default=_plain) + "\n")
    return moved


def _plain(value):
    return None if isinstance(value, float) and not math.isfinite(value) else str(value)


def save_record(model, result: Evaluation, n: int, seed: int) -> Evaluation:
    """Append `result` to the run's eval.json, with what was evaluated; a file that cannot be written is said, not raised."""
    from gancli.errors import GancliError
    from gancli.store.runs import Run, run_dir_of

    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "checkpoint": str(model.path), "step": model.step, "n": n, "seed": seed,
              "weights": model.weights, "extractor": result.extractor, "real_data": result.reference,
              "scores": result.scores, "real_floor": result.floor}  # fmt: skip
    path = Run(run_dir_of(model.path)).evaluations
    try:
        result.moved, result.saved = append_record(path, record), path
    except (OSError, GancliError) as exc:
        result.unsaved = f"Could not append to {path} ({getattr(exc, 'strerror', None) or exc}); the scores above are not saved."
    return result
