"""Opening a trained model for the commands that use one (sample, interpolate, eval, upscale)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from gancli.store import checkpoints
from gancli.store import runs
from gancli.config import TrainConfig
from gancli.device import resolve_device
from gancli.errors import GancliError, UsageError
from gancli.models import KINDS, Architecture, build_generator, check_model_size, get_architecture


@dataclass
class Model:
    net: torch.nn.Module  # in eval mode, on `device`
    config: TrainConfig
    arch: Architecture
    path: Path
    step: int
    weights: str  # "EMA" (the moving average) or "last step"
    device: torch.device


def open_model(path: Path | None, kind: str | None, device: str = "auto", ema: bool = True) -> Model:
    """The `kind` model (a name in gancli.models.KINDS) of a checkpoint file or run (None: the newest under runs/).

    A checkpoint of another kind is refused with the command that uses it (kind None takes any). The
    network is the kind's first weights group the checkpoint holds: with `ema` (the default) a run
    trained with --ema gives its moving-average weights, which sample better.
    """
    path = runs.resolve_checkpoint(path, kind=kind or "generator")
    dev = resolve_device(device)
    header = checkpoints.read_header(path)
    _check_kind(header, kind or header.kind)
    check_model_size(header.config)  # before reading tensors: a crafted file may ask for terabytes
    groups = KINDS[header.kind].weights if ema else KINDS[header.kind].weights[-1:]
    checkpoint = checkpoints.load_checkpoint(path, prefixes=groups)
    net = build_generator(checkpoint.config)
    prefix = next((g for g in groups if checkpoint.group(g)), groups[-1])
    checkpoints.load_state(net, checkpoint, prefix)
    if not all(torch.isfinite(t).all() for t in net.state_dict().values() if t.is_floating_point()):
        raise GancliError(f"'{path}' holds non-finite {prefix} weights (its training diverged); use an earlier checkpoint of the run.")
    weights = "EMA" if prefix.endswith("_ema") else "last step"
    return Model(net.to(dev).eval(), checkpoint.config, get_architecture(checkpoint.config.arch), path, header.step, weights, dev)


def _check_kind(header: checkpoints.Header, kind: str) -> None:
    actual, path, arch = header.kind, header.path, header.config.arch
    if actual == kind:
        return
    use = KINDS[actual].use.format(path=path)
    raise UsageError(f"'{path}' is {_a(actual)} ({arch}), not {_a(kind)}; {use}.")


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"
