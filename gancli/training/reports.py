"""What the training loop tells its reporter (the Rich display, TensorBoard, or nothing): the plan at the
start, progress frames, and each metrics row. The loop imports this; reporters implement Reporter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gancli.config import TrainConfig
from gancli.training.tasks.base import Stat


@dataclass
class TrainingPlan:
    config: TrainConfig
    run_dir: Path
    device: str
    dataset: str
    notices: list[str]
    start_step: int
    total_steps: int
    steps_per_epoch: int
    processes: int = 1  # torchrun ranks, each with config.batch_size images per step
    stats: tuple[Stat, ...] = ()  # what the task reports: step stats, then held-out scores
    time_limit: float | None = None  # seconds: the run ends at the step count or at this, whichever comes first


@dataclass
class TrainingProgress:
    step: int
    total_steps: int
    epoch: float
    stats: dict[str, float]  # stat name -> mean since the previous update (scores: latest)
    images_per_s: float
    seconds: float


@dataclass
class TrainingResult:
    run_dir: Path
    checkpoint: Path
    step: int
    total_steps: int
    seconds: float
    kind: str = "generator"  # what the run's checkpoints hold (the registry's kind)
    stats: tuple[Stat, ...] = ()  # the task's declarations, to show last_row
    last_row: dict[str, float] = field(default_factory=dict)
    row_steps: int = 0  # the steps last_row averages over
    last_sample: Path | None = None
    interrupted: str | None = None  # "SIGINT" / "SIGTERM" when stopped early
    time_limited: bool = False  # stopped by time_limit: a normal end
    dataset: str = ""  # what the run trained on: the next step's hint names it
    seconds_before: float = 0.0  # training time of earlier sessions (a resumed run): seconds - seconds_before is this one's


class Reporter(Protocol):
    def start(self, plan: TrainingPlan) -> None: ...
    def update(self, progress: TrainingProgress) -> None: ...
    def row(self, step: int, row: dict[str, float], sample: Path | None) -> None: ...  # a metrics row and its sample grid (or None)
    def work(self, total: float, what: str): ...  # a context yielding advance(amount): a long job before training (decoding)


class SilentReporter:
    def start(self, plan: TrainingPlan) -> None:
        pass

    def update(self, progress: TrainingProgress) -> None:
        pass

    def row(self, step: int, row: dict[str, float], sample: Path | None) -> None:
        pass

    def work(self, total: float, what: str):
        from gancli.data.folder_cache import silent_work

        return silent_work(total, what)
