"""The task contract: everything the training loop may call, with the defaults tasks share.

A task owns its networks, optimisers and random stream and knows how to take one step; the loop
(gancli.training.loop) owns the schedule, the files and the signals, and knows no task by name.
Fused Adam, channels_last, bf16 autocast and torch.compile/DDP wrapping are set up here once,
for every task.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gancli.config import TrainConfig
from gancli.data.datasets import ImageDataset
from gancli.device import adam, precision_context
from gancli.models import get_architecture
from gancli.models.stochastic import use_generator


@dataclass(frozen=True)
class Stat:
    """A number a task reports: its metrics.csv column, how the display shows it, where metrics.png plots it."""

    name: str
    label: str = ""  # in the display and the plot's legend (default: the name)
    fmt: str = "{:.3f}"
    panel: str | None = None  # metrics.png panel title; None: not plotted
    bounds: tuple[float, float] | None = None  # a fixed y range (probabilities)
    short: str = ""  # a shorter display label where the one before gives the context
    shown: bool = True  # in the live display (metrics.csv has every stat)
    text: str = ""  # the whole display text, when the label would get in the way (progan's "8x8")

    @property
    def legend(self) -> str:
        return self.label or self.name

    def show(self, value: float) -> str:
        return self.text.format(value) if self.text else f"{self.short or self.legend} {self.fmt.format(value)}"


class Task:
    """Base of every training task; subclasses fill modules/optimizers and define step() and preview()."""

    stats: tuple[Stat, ...] = ()  # what step() returns, in this order; rows average them
    scores: tuple[Stat, ...] = ()  # what measure() gives: held-out scores, shown and logged next to `stats`
    best_metric: tuple[str, str] | None = None  # (a score name, "min" or "max"): kept as best.safetensors

    def __init__(self, config: TrainConfig, dataset: ImageDataset, device: torch.device):
        self.config, self.device = config, device
        self.arch = get_architecture(config.arch)
        self.modules: dict[str, nn.Module] = {}  # what checkpoints store, unwrapped
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.nets: dict[str, nn.Module] = {}  # the modules step() runs: wrapped by wrap() (DDP, compile)
        self.twice: dict[str, nn.Module] = self.nets  # the same, for gradient penalties: wrapped only where a double backward works
        self.noise = torch.Generator(device=device).manual_seed(config.seed + 1)  # every random draw of a step
        self.autocast = precision_context(config.precision, device)
        self.train_count = len(dataset)  # the epoch order draws indices below this
        self.steps_taken = 0  # steps taken so far, resumed ones included (the loop sets it when it resumes)
        self.notices: list[str] = []
        self.hyperparameters: dict[str, dict] = {}  # optimiser name -> lr and betas from the config (resuming may change them)

    def add(self, name: str, module: nn.Module, lr: float | None = None, betas=(0.9, 0.999), optimizer: str | None = None) -> nn.Module:
        """Register a network: on the device, channels_last (measured 10% faster for DCGAN 64x64 on a CPU),
        drawing its randomness from self.noise, and with a fused Adam named `optimizer` when lr is given."""
        module = module.to(self.device, memory_format=torch.channels_last)
        use_generator(module, self.noise)
        self.modules[name] = self.nets[name] = module
        if lr is not None:
            self.optimizers[optimizer or f"optimizer_{name}"] = adam(module.parameters(), lr, betas)
            self.hyperparameters[optimizer or f"optimizer_{name}"] = {"lr": lr, "betas": tuple(betas)}
        return module

    # --- what the loop calls -------------------------------------------------------------------

    def step(self, index: torch.Tensor) -> torch.Tensor:
        """Train on the images at `index`; returns the values named by `stats` (detached, one tensor)."""
        raise NotImplementedError

    def preview(self, path: Path) -> None:
        """Write the fixed-input grid of this moment (samples/step_N.png)."""
        raise NotImplementedError

    def wrap(self, wrapper, double_backward: bool = True) -> None:
        """Run the training forwards through wrapper(module) (DDP, torch.compile); self.modules stay bare. A wrapper
        without `double_backward` (torch.compile: aot_autograd has none) leaves gradient penalties on the modules before it."""
        if not double_backward:
            self.twice = dict(self.nets)
        for name in self.nets:
            self.nets[name] = wrapper(self.modules[name])

    def start_from(self, checkpoint) -> list[str]:
        """Take another run's weights before the first step (`--init`); notices to show. Only GANs can."""
        from gancli.errors import UsageError

        raise UsageError(f"--init is for GANs, not --arch {self.config.arch}.")

    def measure(self, step: int, final: bool = False) -> None:
        """Compute the held-out scores, at metrics rows only (they may be costly)."""

    def latest(self) -> dict[str, float | None]:
        """The latest held-out scores (None where not measured yet)."""
        return {}

    def seed_rank(self, rank: int, step: int) -> None:
        """torchrun: each rank draws its own stream; rank 0 keeps the single-process one."""
        if rank:
            self.noise.manual_seed(self.config.seed + 1 + rank * 1_000_003 + step)

    def rng_state(self) -> dict[str, torch.Tensor]:
        return {"noise": self.noise.get_state()}

    def set_rng_state(self, state: dict[str, torch.Tensor] | None, step: int) -> bool:
        """Restore the stream; False when it cannot be (RNG states do not carry across device types)."""
        if state is not None and "noise" in state:
            self.noise.set_state(state["noise"])
            return True
        self.noise.manual_seed(self.config.seed + 1 + step)
        return False
