"""Do a conditional generator's images help a classifier? gancli's dataset classifier trained three times, with the
same steps and seed, and tested on held-out real images:

- (a) on the real labelled training images;
- (b) on synthetic images only, N per class: the Classification Accuracy Score (Ravuri & Vinyals, 2019);
- (c) on the real images plus the synthetic ones (the naive augmentation score).

(c) - (a) says whether the synthetic images are worth adding; (b) per class says which classes the generator draws
recognisably. Each seed draws its own synthetic images and its own classifier initialisation and batch order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from gancli.config import TrainConfig
from gancli.errors import UsageError

DEFAULT_STEPS = 1000  # classifier steps of 64 images for each of (a), (b), (c): 32 epochs of 2,000 images (docs/small-data.md)
BATCH = 64
CASES = ("real", "synthetic", "real+synthetic")


@dataclass
class Usefulness:
    """Accuracies on the held-out real images, per case and seed; the synthetic-only accuracy per class and seed."""

    class_names: tuple[str, ...]
    per_class: int  # synthetic images per class
    steps: int
    seeds: list[int]
    real_count: int
    test_count: int
    accuracy: dict[str, list[float]] = field(default_factory=dict)
    class_accuracy: list[list[float]] = field(default_factory=list)  # (b), [seed][class]
    seconds: float = 0.0
    real_from: str = ""
    test_from: str = ""
    model: object = None
    saved: object = None  # the eval.json it was appended to
    unsaved: str = ""  # why it could not be

    def mean(self, case: str) -> float:
        return sum(self.accuracy[case]) / len(self.accuracy[case])

    def spread(self, case: str) -> float:
        """Half the range over seeds (0 with one seed)."""
        return (max(self.accuracy[case]) - min(self.accuracy[case])) / 2

    @property
    def change(self) -> float:
        """(c) - (a), in accuracy (0.01 is one point)."""
        return self.mean("real+synthetic") - self.mean("real")

    def record(self) -> dict:
        return {"usefulness": {case: self.accuracy[case] for case in CASES}, "synthetic_per_class": dict(zip(self.class_names, map(list, zip(*self.class_accuracy)))),
                "per_class": self.per_class, "steps": self.steps, "seeds": self.seeds, "real_images": self.real_count, "test_images": self.test_count,
                "real_data": self.real_from, "test_data": self.test_from}  # fmt: skip


def classifier_config(like: TrainConfig, seed: int) -> TrainConfig:
    return TrainConfig(arch="classifier", dataset=like.dataset, image_size=like.image_size, channels=like.channels, num_classes=like.num_classes,
                       class_names=tuple(like.class_names), batch_size=BATCH, seed=seed)  # fmt: skip


def fit_and_test(images: torch.Tensor, labels: torch.Tensor, test_images: torch.Tensor, test_labels: torch.Tensor, config: TrainConfig,
                 steps: int, device, advance=None) -> tuple[float, list[float]]:  # fmt: skip
    """Train gancli's classifier on uint8 `images` for `steps` steps of BATCH (Adam at the classifier run's rate, the batch
    order and initialisation from config.seed); its accuracy on the test images, overall and per class."""
    from gancli.device import adam
    from gancli.models import build_generator
    from gancli.models.stochastic import use_generator
    from gancli.training.loop import epoch_order
    from gancli.training.tasks.classifier import CLASSIFIER_LR

    torch.manual_seed(config.seed)
    net = build_generator(config).to(device)
    use_generator(net, torch.Generator(device=device).manual_seed(config.seed + 1))
    optimiser = adam(net.parameters(), CLASSIFIER_LR, (0.9, 0.999))
    per_epoch = max(1, len(images) // BATCH)
    for step in range(steps):
        epoch, within = divmod(step, per_epoch)
        if within == 0:
            order = epoch_order(len(images), config.seed, epoch)
        index = order[within * BATCH : (within + 1) * BATCH]
        x = images[index].to(device).float().div_(127.5).sub_(1)
        loss = F.cross_entropy(net(x), labels[index].to(device))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if advance is not None:
            advance(1)
    net.eval()
    with torch.no_grad():
        predicted = torch.cat([net(chunk.to(device).float().div(127.5).sub(1)).argmax(1).cpu() for chunk in test_images.split(1000)])
    right = predicted == test_labels
    per_class = [float(right[test_labels == k].float().mean()) if (test_labels == k).any() else float("nan") for k in range(config.num_classes)]
    return float(right.float().mean()), per_class


def measure(synthesise, config: TrainConfig, real: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor], per_class: int,
            steps: int = DEFAULT_STEPS, seeds: int = 1, device="cpu", advance=None) -> Usefulness:  # fmt: skip
    """(a), (b) and (c) for each of `seeds` seeds. `synthesise(k, n, seed)` gives n uint8 images of class k; `real` and
    `test` are (uint8 images, labels) with the run's classes."""
    if steps < 1 or per_class < 1 or seeds < 1:
        raise UsageError("usefulness needs at least 1 step, 1 image per class and 1 seed.")
    started = time.perf_counter()
    result = Usefulness(tuple(config.class_names), per_class, steps, list(range(seeds)), len(real[0]), len(test[0]),
                        {case: [] for case in CASES})  # fmt: skip
    for seed in range(seeds):
        made = [synthesise(k, per_class, 1_000 * seed + k) for k in range(config.num_classes)]
        synthetic = (torch.cat(made), torch.arange(config.num_classes).repeat_interleave(per_class))
        both = (torch.cat([real[0], synthetic[0]]), torch.cat([real[1], synthetic[1]]))
        for case, (images, labels) in zip(CASES, (real, synthetic, both)):
            accuracy, classes = fit_and_test(images, labels, *test, classifier_config(config, seed), steps, device, advance)
            result.accuracy[case].append(accuracy)
            if case == "synthetic":
                result.class_accuracy.append(classes)
    result.seconds = time.perf_counter() - started
    return result


def labelled_sets(config: TrainConfig, real: str | None, test: str | None, data_dir=None) -> tuple[tuple, tuple, str, str]:
    """(real images, labels), (test images, labels) with the run's class indices, and where each came from.

    `real`: the labelled training images (default: the run's data); `test`: held-out ones (default: the test split of
    a named dataset; for a folder, or MNIST's bundled test split, a tenth of the real images held out). Classes are
    matched by name; the test images are resized to the run's size."""
    from gancli.data.datasets import NAMED_DATASETS, dataset_name, load_dataset, load_test_images
    from gancli.training.tasks.classifier import held_out_count

    real = dataset_name(real) if real is not None else config.dataset
    data = load_dataset(real, config.image_size, data_dir)
    images, labels = data.images[:], _relabel(data.labels, data.class_names, config, f"'{real}'")
    if test is None and not (real in NAMED_DATASETS and data.split == "train"):  # no separate test split: hold some out
        held = held_out_count(len(images))
        if held < config.num_classes:
            raise UsageError(f"'{real}' has {len(images)} images: too few to hold a tenth out; give --test DATA with held-out images.")
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
        kept, out = order[:-held], order[-held:]
        return (images[kept], labels[kept]), (images[out], labels[out]), f"{data.description}, less {held:,} held out", f"{held:,} of {data.description} held out"
    test = dataset_name(test) if test is not None else real
    if test in NAMED_DATASETS:
        test_images, test_labels, where = load_test_images(test, data_dir)
        test_labels = _relabel(test_labels, NAMED_DATASETS[test].class_names, config, f"the {test} test split")
    else:
        held = load_dataset(test, config.image_size, data_dir)
        test_images, test_labels, where = held.images[:], _relabel(held.labels, held.class_names, config, f"'{test}'"), held.description
    if test_images.shape[1] != config.channels:
        raise UsageError(f"The test images have {test_images.shape[1]} channels, the run draws {config.channels}; give test images like the run's.")
    if test_images.shape[-1] != config.image_size:
        from torchvision.transforms import functional as TF

        test_images = TF.center_crop(TF.resize(test_images, config.image_size, antialias=True), config.image_size)
    return (images, labels), (test_images, test_labels), data.description, where


def _relabel(labels, names: tuple[str, ...], config: TrainConfig, what: str) -> torch.Tensor:
    """`labels` (indices into `names`) as indices into the run's classes, matched by name."""
    if labels is None or set(names) != set(config.class_names):
        have = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "") if labels is not None and names else "no classes"
        raise UsageError(f"{what} has {have}; the run's classes are {', '.join(config.class_names[:4])}"
                         f"{', ...' if config.num_classes > 4 else ''}: give labelled images of the same classes.")  # fmt: skip
    order = torch.tensor([config.class_names.index(name) for name in names])
    return order[labels]


def save(model, result: Usefulness) -> None:
    """Append to the run's eval.json with what was measured; a file that cannot be written is said, not raised."""
    from gancli.errors import GancliError
    from gancli.evaluation.evaluate import append_record
    from gancli.store.runs import Run, run_dir_of

    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "checkpoint": str(model.path), "step": model.step, "weights": model.weights} | result.record()
    path = Run(run_dir_of(model.path)).evaluations
    try:
        append_record(path, record)
        result.saved = path
    except (OSError, GancliError) as exc:
        result.unsaved = f"Could not append to {path} ({getattr(exc, 'strerror', None) or exc}); the accuracies above are not saved."
