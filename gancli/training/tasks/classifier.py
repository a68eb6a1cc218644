"""The dataset classifier's task: cross-entropy on labelled images, accuracy on held-out ones.

`gancli train DATA --arch classifier` trains it; `gancli eval` uses it (gancli.evaluation.classify).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from gancli.config import TrainConfig
from gancli.data.datasets import ImageDataset
from gancli.errors import UsageError
from gancli.data.images import save_grid, to_uint8
from gancli.models import build_generator
from gancli.training.tasks.base import Stat, Task

CLASSIFIER_LR = 1e-3  # Adam's usual rate: a supervised problem, not a two-player game
MAX_HELD_OUT = 1000


def held_out_count(n: int) -> int:
    """Images kept out of training to measure accuracy on: a tenth, at most MAX_HELD_OUT."""
    return min(MAX_HELD_OUT, n // 10)


class ClassifierTask(Task):
    """Fits the classifier; the last images of the dataset are held out (epoch_order never reaches them)."""

    stats = (Stat("loss_CE", panel="loss"), Stat("train_accuracy", "training accuracy", fmt="{:.4g}", panel="accuracy", bounds=(0.0, 1.0)))
    scores = (Stat("accuracy", "held-out accuracy", fmt="{:.4g}", panel="accuracy", bounds=(0.0, 1.0)),)
    best_metric = ("accuracy", "max")

    def __init__(self, config: TrainConfig, dataset: ImageDataset, device: torch.device):
        super().__init__(config, dataset, device)
        if config.num_classes < 2 or dataset.labels is None:
            raise UsageError(f"--arch classifier needs labelled data, but '{config.dataset}' has no classes; use a named dataset or class sub-folders.")
        held = held_out_count(len(dataset))
        if held < 1:
            raise UsageError(f"'{config.dataset}' has {len(dataset)} images: too few to hold some out; a classifier needs at least 10.")
        self.train_count = len(dataset) - held
        self.images = dataset.images.to(device)
        self.labels = dataset.labels.to(device)
        self.eval_images = self.images[self.train_count :].float().div(127.5).sub(1)
        self.eval_labels = self.labels[self.train_count :]
        self.add("classifier", build_generator(config), CLASSIFIER_LR, optimizer="optimizer")
        self.accuracy: float | None = None
        self.notices.append(f"Held out {held} images to measure accuracy; learning rate {CLASSIFIER_LR:g} (Adam).")

    def step(self, index: torch.Tensor) -> torch.Tensor:
        images = self.images[index].float().div_(127.5).sub_(1)
        labels = self.labels[index]
        optimizer = self.optimizers["optimizer"]
        optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            logits = self.nets["classifier"](images)
            loss = F.cross_entropy(logits.float(), labels)
        loss.backward()
        optimizer.step()
        return torch.stack([loss.detach(), (logits.argmax(1) == labels).float().mean()])

    def latest(self) -> dict[str, float | None]:
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
