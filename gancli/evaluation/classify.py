"""A trained dataset classifier (`gancli train DATA --arch classifier`, see gancli.training.tasks.classifier) for `gancli eval`.

It gives every evaluation metric an offline feature space (no Inception weights needed) and
the labels behind class coverage and conditional accuracy.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gancli.store import checkpoints
from gancli.config import TrainConfig
from gancli.errors import GancliError, UsageError
from gancli.models import KINDS, build_generator, get_architecture


def load_classifier(path: Path, device: torch.device) -> tuple[torch.nn.Module, TrainConfig, checkpoints.Checkpoint]:
    """A trained classifier in eval mode, its config and its checkpoint."""
    checkpoint = checkpoints.load_checkpoint(path, prefixes=KINDS["classifier"].weights)
    config = checkpoint.config
    if get_architecture(config.arch).kind != "classifier":
        raise UsageError(f"'{path}' is a {config.arch} checkpoint, not a classifier; train one with 'gancli train {config.dataset} --arch classifier'.")
    net = build_generator(config)
    checkpoints.load_state(net, checkpoint, KINDS["classifier"].weights[0])
    return net.to(device).eval(), config, checkpoint


def check_matches(classifier_config: TrainConfig, dataset: str) -> None:
    if classifier_config.dataset != dataset:
        raise GancliError(
            f"The classifier was trained on '{classifier_config.dataset}', the generator on '{dataset}'; "
            f"train one on the same data with 'gancli train {dataset} --arch classifier'."
        )
