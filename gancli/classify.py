"""The dataset classifier: trained by `gancli train DATA --arch classifier`, used by `gancli eval`.

It gives every evaluation metric an offline feature space (no Inception weights needed) and
the labels behind class coverage and conditional accuracy.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from gancli import checkpoints
from gancli.config import TrainConfig
from gancli.data import ImageDataset
from gancli.errors import GancliError, UsageError
from gancli.images import save_grid, to_uint8
from gancli.models import build_generator, get_architecture

CLASSIFIER_LR = 1e-3  # Adam's usual rate: a supervised problem, not a two-player game
MAX_HELD_OUT = 1000


def held_out_count(n: int) -> int:
    """Images kept out of training to measure accuracy on: a tenth, at most MAX_HELD_OUT."""
    return min(MAX_HELD_OUT, n // 10)


class ClassifierTask:
    """What train() needs to fit the classifier: cross-entropy on labelled images, held-out accuracy."""

    best_metric = ("accuracy", "max")

    def __init__(self, config: TrainConfig, dataset: ImageDataset, device: torch.device):
        if config.num_classes < 2 or dataset.labels is None:
            raise UsageError(f"--arch classifier needs labelled data, but '{config.dataset}' has no classes; use a named dataset or class sub-folders.")
        self.config, self.device = config, device
        held = held_out_count(len(dataset))
        if held < 1:
            raise UsageError(f"'{config.dataset}' has {len(dataset)} images: too few to hold some out; a classifier needs at least 10.")
        self.train_count = len(dataset) - held  # the held-out images are the last ones; epoch_order never reaches them
        self.images = dataset.images.to(device)
        self.labels = dataset.labels.to(device)
        self.eval_images = self.images[self.train_count :].float().div(127.5).sub(1)
        self.eval_labels = self.labels[self.train_count :]
        self.classifier = build_generator(config).to(device)
        self.modules = {"classifier": self.classifier}
        self.optimizers = {"optimizer": torch.optim.Adam(self.classifier.parameters(), lr=CLASSIFIER_LR)}
        self.stat_names = ("loss_CE", "train_accuracy")
        self.accuracy: float | None = None
        self.noise = torch.Generator(device=device).manual_seed(config.seed + 1)
        self.notices = [f"Held out {held} images to measure accuracy; learning rate {CLASSIFIER_LR:g} (Adam)."]
        if config.precision != "fp32":
            self.notices.append(f"--precision {config.precision} is not used by the classifier; training in fp32.")

    def step(self, index: torch.Tensor) -> torch.Tensor:
        images = self.images[index].float().div_(127.5).sub_(1)
        labels = self.labels[index]
        optimizer = self.optimizers["optimizer"]
        optimizer.zero_grad(set_to_none=True)
        logits = self.classifier(images)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        optimizer.step()
        return torch.stack([loss.detach(), (logits.argmax(1) == labels).float().mean()])

    def wrap(self, wrapper) -> None:
        self.classifier = wrapper(self.classifier)

    def evaluate(self) -> dict[str, float | None]:
        """The held-out accuracy measured at the latest metrics row (None before the first)."""
        return {"accuracy": self.accuracy}

    @torch.no_grad()
    def measure(self, step: int, final: bool = False) -> None:
        net = self.modules["classifier"]
        net.eval()
        predicted = torch.cat([net(chunk).argmax(1) for chunk in self.eval_images.split(500)])
        net.train()
        self.accuracy = (predicted == self.eval_labels).float().mean().item()

    @torch.no_grad()
    def preview(self, path: Path) -> None:
        """64 held-out images ordered by the class the classifier gives them."""
        net = self.modules["classifier"]
        net.eval()
        images = self.eval_images[:64]
        order = net(images).argmax(1).argsort(stable=True)
        net.train()
        save_grid(to_uint8(images[order]), path, nrow=8)


def load_classifier(path: Path, device: torch.device) -> tuple[torch.nn.Module, TrainConfig, checkpoints.Checkpoint]:
    """A trained classifier in eval mode, its config and its checkpoint."""
    checkpoint = checkpoints.load_checkpoint(path, prefixes=("classifier",))
    config = checkpoint.config
    if get_architecture(config.arch).kind != "classifier":
        raise UsageError(f"'{path}' is a {config.arch} checkpoint, not a classifier; train one with 'gancli train {config.dataset} --arch classifier'.")
    net = build_generator(config)
    checkpoints.load_state(net, checkpoint, "classifier")
    return net.to(device).eval(), config, checkpoint


def accuracy_of(checkpoint: checkpoints.Checkpoint) -> float | None:
    try:
        return float(checkpoint.metadata["accuracy"])
    except (KeyError, ValueError):
        return None


def check_matches(classifier_config: TrainConfig, dataset: str) -> None:
    if classifier_config.dataset != dataset:
        raise GancliError(
            f"The classifier was trained on '{classifier_config.dataset}', the generator on '{dataset}'; "
            f"train one on the same data with 'gancli train {dataset} --arch classifier'."
        )
